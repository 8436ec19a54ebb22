"""Run manifests: what a run read (file hashes, row counts), what it wrote, with which versions, how
long each step took, and why it failed when it did. Stored as the JSON `manifest` of its
`run_manifests` row, in the same transaction as the run's tables."""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import polars as pl

logger = logging.getLogger(__name__)

_PACKAGES = ("mayorista", "polars", "duckdb", "pyarrow", "great-expectations", "apache-airflow", "holidays")
SCHEMA = {
    "run_id": pl.String,
    "pipeline": pl.String,
    "period": pl.String,
    "started_at": pl.Datetime("us"),
    "finished_at": pl.Datetime("us"),
    "status": pl.String,
    "snapshot_id": pl.Int64,
    "manifest": pl.String,
}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    # the counts of each period a run recomputed, when it covers more than its own (a metering run that
    # read a late resend of an earlier month recomputes that month too)
    periods: dict[str, dict[str, int]] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=versions)
    status: str = "running"
    reason: str | None = None  # why a failed run failed

    def add_input(self, path: Path, rows: int) -> None:
        self.inputs.append(
            {"file": Path(path).name, "sha256": file_sha256(path), "bytes": Path(path).stat().st_size, "rows": rows}
        )

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step (summed when repeated) and log its start and end. The log line also gives the
        process's CPU seconds over the step (all its threads, background ones included): on a shared
        machine the wall time follows the load, the CPU time much less so (docs/performance.md)."""
        logger.info("%s %s: %s ...", self.pipeline, self.period, name)
        start, cpu = time.perf_counter(), _cpu_seconds()
        before = dict(self.counts)
        try:
            yield
        finally:
            seconds = time.perf_counter() - start
            self.timings_s[name] = round(self.timings_s.get(name, 0.0) + seconds, 3)
            # the row counts this step recorded (rows read, ingested, ...), so a long run's log shows them as it goes
            rows = {k: v for k, v in self.counts.items() if before.get(k) != v}
            logger.info(
                "%s %s: %s done in %.2f s (cpu %.2f s)%s",
                self.pipeline,
                self.period,
                name,
                seconds,
                _cpu_seconds() - cpu,
                "".join(f", {k}={v:,}" if isinstance(v, int) else f", {k}={v}" for k, v in rows.items()),
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str)

    def row(self, snapshot_id: int | None = None) -> pl.DataFrame:
        """The `run_manifests` row."""
        return pl.DataFrame(
            {
                "run_id": [self.run_id],
                "pipeline": [self.pipeline],
                "period": [self.period],
                "started_at": [datetime.fromisoformat(self.started_at)],
                "finished_at": [datetime.now().replace(microsecond=0)],
                "status": [self.status],
                "snapshot_id": [snapshot_id],
                "manifest": [self.to_json()],
            },
            schema=SCHEMA,
        )
