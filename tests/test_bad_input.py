"""Bad inputs and a failing machine: each gives one clear message, and a failure of the machine is
never taken for a problem of the input (reliability issue: a full disk once published an empty month)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import polars as pl
import pytest

from pipelines.errors import EnvironmentFault, InputError
from pipelines.metering import readings
from pipelines.metering import registry as reg
from tests.test_metering_fixtures import series, write_lines, write_readings, write_registry


def _stage(root: Path, out: Path, month: str = "2026-04") -> readings.Staged:
    registry = reg.load_registry(root)
    points = reg.month_points(registry, month)
    return readings.stage(month, root, reg.device_days(registry, month, points),
                          registry["device_id"].unique().to_list(), out)


@pytest.fixture
def full_disk(tmp_path: Path):
    """A real, tiny (64 KiB) filesystem: writes into it fail with ENOSPC like a full disk does."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (not root here)")
    mount = tmp_path / f"full-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# --- 1. a failed staging write is the machine's fault, never the input's -------------------------

def _good_month(root: Path) -> None:
    write_registry(root)
    write_readings(root, "2026-04/PA.csv", pl.concat([series("DEV1", 1, 30), series("DEV2", 16, 30)]))
    series("DEV3", 1, 10).write_parquet(root / "readings" / "2026-04" / "PB.parquet")


def test_full_scratch_disk_stops_the_run_instead_of_marking_files_unreadable(tmp_path, full_disk):
    root = tmp_path / "in"
    _good_month(root)
    with pytest.raises(EnvironmentFault) as raised:
        _stage(root, full_disk / "scratch")
    message = str(raised.value)
    assert "the disk is full" in message and str(full_disk / "scratch") in message
    assert "Nothing was published" in message
    assert "cannot be read" not in message
    assert not list((full_disk / "scratch").glob(".*.tmp"))  # no half-written scratch file left behind


def test_a_write_failure_in_the_per_file_path_is_also_an_environment_fault(tmp_path, monkeypatch):
    """Without root: the staging write is made to fail the way polars reports ENOSPC."""
    root = tmp_path / "in"
    _good_month(root)
    real = pl.LazyFrame.sink_parquet

    def failing(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device (os error 28)")

    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", failing)
    with pytest.raises(EnvironmentFault, match="the disk is full"):
        _stage(root, tmp_path / "scratch")
    assert not list((tmp_path / "scratch").glob(".*.tmp"))
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", real)
    staged = _stage(root, tmp_path / "scratch2")  # and with a working disk the same inputs are fine
    assert staged.unreadable == {}


def test_a_genuinely_unreadable_file_is_still_only_that_file(tmp_path):
    root = tmp_path / "in"
    _good_month(root)
    (root / "readings" / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    staged = _stage(root, tmp_path / "scratch")
    (bad,) = [staged.files[i].name for i in staged.unreadable]
    assert bad == "broken.parquet"
