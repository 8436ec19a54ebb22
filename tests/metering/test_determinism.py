"""The metering aggregates regulators and reports read are reproducible bit for bit: two ingests of
the same month, one with a single polars/DuckDB thread and one with the default (every core), publish
identical meter_hourly, meter_completeness, meter_estimates and vee_findings.

The month is the bundled sample's April (50 points, 4 channels: about 576,000 readings), large enough
for polars and DuckDB to split their work. The hourly sums are segment sums over readings sorted by
key (numpy reduceat, pipelines/metering/aggregates.py), whose order does not depend on threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from pipelines import config, warehouse

MAYORISTA = str(Path(sys.executable).parent / "mayorista")
TABLES = {
    "meter_hourly": ("point_id", "channel", "hour"),
    "meter_completeness": ("point_id", "channel", "month"),
    "meter_estimates": ("point_id", "channel", "interval_end"),
    "vee_findings": None,  # every column is part of the order
}


def _ingest(root: Path, threads: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAYORISTA_") and k != "POLARS_MAX_THREADS"}
    env |= {"MAYORISTA_SCRATCH": str(root / "scratch"), "GX_ANALYTICS_ENABLED": "False"}
    if threads:
        env |= {"POLARS_MAX_THREADS": threads, "MAYORISTA_DUCKDB_THREADS": threads}
    wh = str(root / "wh.sqlite")
    argv = [MAYORISTA, "meters", "ingest", "--month", "2026-04", "--input", str(config.ROOT / "data/sample/smec")]
    done = subprocess.run(
        [*argv, "--warehouse", wh, "--lake", str(root / "lake")], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    return wh


def _published(wh: str, table: str, key: tuple[str, ...] | None) -> pl.DataFrame:
    frame = warehouse.query(f"FROM {table}", wh)
    # what differs by nature between two runs: their ids and clocks
    frame = frame.drop([c for c in frame.columns if "run" in c or c.endswith("_at") or c == "source_file_id"])
    return frame.sort(list(key) if key else frame.columns)


def test_two_ingests_with_one_and_all_threads_publish_identical_aggregates(tmp_path):
    one = _ingest(tmp_path / "one", "1")
    every = _ingest(tmp_path / "every", None)
    assert warehouse.query("SELECT count(*) AS n FROM meter_readings", one)["n"][0] >= 500_000
    for table, key in TABLES.items():
        a, b = _published(one, table, key), _published(every, table, key)
        assert a.height > 0, table
        assert_frame_equal(a, b, check_exact=True)
