"""Regenerates the bundled sample data under `data/sample/` (deterministic: same bytes every time)."""

from __future__ import annotations

from pathlib import Path

from pipelines import config


def generate_all(out: Path | None = None) -> str:
    from pipelines.delivery import sample as delivery_sample
    from pipelines.metering import sample as metering_sample
    from pipelines.ncc11 import sample as ncc11_sample

    root = Path(out or config.data_dir() / "sample")
    written = [
        *ncc11_sample.generate_year(root / "ncc11"),
        metering_sample.generate(root / "smec"),
        delivery_sample.generate(root / "smec"),
    ]
    return "sample data written:\n" + "\n".join(f"  {p}" for p in written)
