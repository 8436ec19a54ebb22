"""Run manifests: what a run read (file hashes, row counts), what it wrote, with which versions,
and how long each step took. Written as JSON in the lake and as a row of `run_manifests`."""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Iterator

import polars as pl
from upath import UPath

from pipelines import lake

_PACKAGES = ("mayorista", "polars", "duckdb", "pyarrow", "great-expectations", "apache-airflow", "holidays")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


@dataclass
class Manifest:
    pipeline: str
    period: str
    run_id: str
    started_at: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))
    inputs: list[dict] = field(default_factory=list)
    outputs: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=versions)
    status: str = "running"

    def add_input(self, path: Path, rows: int) -> None:
        self.inputs.append({"file": Path(path).name, "sha256": file_sha256(path), "bytes": Path(path).stat().st_size, "rows": rows})

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_s[name] = round(self.timings_s.get(name, 0.0) + time.perf_counter() - start, 3)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: UPath) -> UPath:
        return lake.write_text(self.to_json(), path)

    @classmethod
    def load(cls, path: UPath) -> "Manifest":
        return cls(**json.loads(lake.location(path).read_text(encoding="utf-8")))

    def row(self) -> pl.DataFrame:
        """The `run_manifests` row."""
        return pl.DataFrame({
            "run_id": [self.run_id], "pipeline": [self.pipeline], "period": [self.period],
            "started_at": [self.started_at], "finished_at": [datetime.now().isoformat(timespec="seconds")],
            "status": [self.status], "manifest": [self.to_json()],
        })

    def publish_path(self, lake_root: UPath) -> UPath:
        return lake.partition_dir(lake_root, "_manifests", pipeline=self.pipeline, period=self.period) / f"{lake.safe_name(self.run_id)}.json"
