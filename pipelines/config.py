"""Where things live. Every location can be overridden by an environment variable so the same code
runs in the demo, the tests, and under a scheduler; defaults keep everything inside the repository."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

ROOT = Path(__file__).resolve().parent.parent


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else default


def data_dir() -> Path:
    return _path("MAYORISTA_DATA_DIR", ROOT / "data")


def warehouse(override: str | os.PathLike[str] | None = None) -> str:
    """The warehouse catalog: a SQLite file path (embedded default) or a PostgreSQL URI (production).
    `override` (a command's --warehouse) wins over MAYORISTA_WAREHOUSE."""
    return str(override or os.environ.get("MAYORISTA_WAREHOUSE") or data_dir() / "warehouse.sqlite")


LOCK_WAIT_S = 120.0  # how long a command waits for a catalog another process holds


def lock_wait_s() -> float:
    """Seconds a command waits, in all, for a catalog another process holds: MAYORISTA_LOCK_WAIT_S
    (default 120). Checked when a command starts, so a typo stops it before any work."""
    from pipelines.errors import MayoristaError

    text = os.environ.get("MAYORISTA_LOCK_WAIT_S", "").strip()
    if not text:
        return LOCK_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise MayoristaError(f"MAYORISTA_LOCK_WAIT_S must be a number of seconds, 0 or more (e.g. 120), got {text!r}")
    return value


def scratch_root() -> Path:
    """Local working files of running jobs (never published); a run removes what dead runs left here."""
    return _path("MAYORISTA_SCRATCH", Path(tempfile.gettempdir()) / "mayorista-scratch")


def lake_root(override: str | os.PathLike[str] | None = None) -> UPath:
    """Root of the lake (the warehouse's Parquet data files, and reports under reports/): a path or a
    URI (`file://`, or `s3://` / `gs://` / `abfs://` with that fsspec filesystem installed).
    `override` (a command's --lake) wins over MAYORISTA_LAKE."""
    from pipelines import lake

    return lake.location(override or os.environ.get("MAYORISTA_LAKE") or data_dir() / "lake")


def landing_root() -> Path:
    """Where scheduled runs look for their inputs: <landing>/<domain>/<period>/."""
    return _path("MAYORISTA_LANDING", data_dir() / "sample")


def config_dir() -> Path:
    """Calendars and thresholds kept as data (band calendar, VEE thresholds, non-working days)."""
    return _path("MAYORISTA_CONFIG", ROOT / "config")


def expectations_dir() -> Path:
    return ROOT / "expectations"


def sql_dir() -> Path:
    return ROOT / "sql"


@dataclass(frozen=True)
class Settings:
    """Every location a run needs, resolved once (command-line overrides, then environment, then the
    repository defaults) and passed down: nothing below re-reads the environment for these."""

    warehouse: str
    lake: str
    landing: Path
    config: Path

    @classmethod
    def resolve(
        cls,
        *,
        warehouse: str | os.PathLike[str] | None = None,
        lake: str | os.PathLike[str] | None = None,
        landing: Path | None = None,
    ) -> Settings:
        return cls(
            warehouse=_warehouse(warehouse),
            lake=str(lake_root(lake)),
            landing=Path(landing or landing_root()),
            config=config_dir(),
        )

    def inputs(self, domain: str, period: str | None = None) -> Path:
        """The landing layout, in one place: <landing>/ncc11/<quarter>/ and <landing>/smec/ (meters and
        delivery read the same folder)."""
        if domain == "ncc11":
            if period is None:
                raise ValueError("ncc11 inputs are per quarter")
            return self.landing / "ncc11" / str(period)
        return self.landing / "smec"


_warehouse = warehouse
