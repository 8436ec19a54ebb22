"""A catalog held by another process (issue #19, item 10): the run waits MAYORISTA_LOCK_WAIT_S once
(not once for the publish and again to record its failure), the error names the process holding
the lock, and the failed run is recorded once the lock is free (by the next run that writes)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines import run
from pipelines import warehouse as wh
from pipelines.warehouse import Write

HOLD = (
    "import sqlite3, sys, time\n"
    "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "con.execute('BEGIN EXCLUSIVE')\n"
    "print('held', flush=True)\n"
    "time.sleep(600)\n"
)


def _publish(catalog: Path, lake: Path, period: str) -> run.Run:
    with run.start("ncc11", period, warehouse=catalog, lake_root=lake, warm=False) as r:
        frame = pl.DataFrame({"quarter": [period], "x": [1]})
        r.publish([Write("lock_probe", frame, {"quarter": period}, ("quarter",))])
    return r


def test_a_held_catalog_is_waited_for_once_named_and_the_failed_run_recorded_later(tmp_path, monkeypatch):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    _publish(catalog, lake, "2026-03")
    wait = 10  # long enough to tell one wait (10-20 s) from two (20 s or more)
    monkeypatch.setenv("MAYORISTA_LOCK_WAIT_S", str(wait))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(catalog)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(wh.CatalogLocked) as failure:
            _publish(catalog, lake, "2026-06")
        elapsed = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    message = str(failure.value)
    assert f"process {holder.pid}" in message and "MAYORISTA_LOCK_WAIT_S=10" in message, message
    # one wait: the publish's; recording the failure tries once more (one SQLite busy timeout), never waits again
    assert wait <= elapsed < 2 * wait, f"waited {elapsed:.0f} s for a {wait} s lock wait"
    pending = list(run._Pending.folder_of(str(catalog)).glob("*.manifest.parquet"))
    assert len(pending) == 1, "the failed run's record was lost"

    later = _publish(catalog, lake, "2026-09")  # the lock is free: this run records the failed one
    rows = wh.query("SELECT run_id, period, status, manifest FROM run_manifests ORDER BY period", catalog)
    assert rows["period"].to_list() == ["2026-03", "2026-06", "2026-09"]
    failed = rows.filter(pl.col("period") == "2026-06")
    assert failed["status"].item() == "failed" and "is locked by process" in failed["manifest"].item()
    assert later.snapshot_id is not None
    assert not list(run._Pending.folder_of(str(catalog)).glob("*.parquet")), "the pending record was not removed"


def test_a_lock_wait_that_is_not_a_number_stops_a_run_before_any_work(tmp_path, monkeypatch):
    """Under Airflow there is no CLI to check it: the run itself refuses before it starts."""
    from pipelines.errors import MayoristaError

    monkeypatch.setenv("MAYORISTA_LOCK_WAIT_S", "2 minutes")
    with pytest.raises(MayoristaError, match="MAYORISTA_LOCK_WAIT_S must be a number of seconds"):
        with run.start("ncc11", "2026-03", warehouse=tmp_path / "w.sqlite", warm=False):
            pytest.fail("the run started")
    assert not (tmp_path / "w.sqlite").exists()
