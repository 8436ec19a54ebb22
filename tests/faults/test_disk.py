"""A full disk and read-only storage under the warehouse (reliability issue, fault injection 3 and 4).

Real filesystems: a tmpfs mounted for the case (root only; skipped with the reason otherwise), holding
a copy of the good baseline, then filled until writes fail with ENOSPC, or remounted read-only. The run
must stop with exit 2 and one sentence that blames the machine (never the input), and the previous
results must be intact once the space is freed / the storage is writable again."""

from __future__ import annotations

import re

import pytest

from tests.faults import support
from tests.faults.support import INPUT_BLAME

FULL = re.compile(r"disk is full|no space left", re.I)
READ_ONLY = re.compile(r"read-only|readonly|read only", re.I)


def _blames_machine(text: str, pattern: re.Pattern, result: support.Result) -> None:
    assert pattern.search(text), f"the message does not say what failed ({pattern.pattern}):\n{result}"
    assert not INPUT_BLAME.search(text), f"a failure of the machine is blamed on the input:\n{result}"


def _no_strays_after_maintenance(place: support.Place) -> None:
    result = place.maintain()
    assert result.returncode == 0, result
    orphans = support.orphan_files(place)
    assert not orphans, f"files no snapshot references after maintain: {orphans[:5]}"


# --- 3. full disk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("what, size", [("lake", "32m"), ("catalog", "2m")])
def test_full_disk_under_the_lake_or_the_catalog(what, size, baseline, baseline_fp, tmp_path, faults):
    """Data files (or the SQLite catalog) on a full disk, the other on a normal one."""
    with support.tmpfs(tmp_path / f"{what}fs", size) as fs:
        where = {"lake_dir": fs / "lake"} if what == "lake" else {"catalog_dir": fs}
        place = support.copy_place(baseline, tmp_path / "case", **where)
        assert support.fingerprint(place).exact == baseline_fp.exact  # the good results, now in place
        fault = faults.inject(f"ncc11 publishing to a {what} on a full disk")
        filler = support.fill(fs)
        result = place.run("ncc11")
        filler.unlink()
        support.assert_intact(fault, baseline_fp, place)
        text = support.assert_clear_failure(result, "ncc11")
        _blames_machine(text, FULL, result)
        _no_strays_after_maintenance(place)
        fault.survived = True


def test_full_scratch_disk_stops_meters_and_keeps_the_month(place, baseline_fp, tmp_path, faults):
    """MAYORISTA_SCRATCH on a full disk: staging the readings fails; the warehouse is fine, so the
    failed run is recorded."""
    with support.tmpfs(tmp_path / "scratchfs", "256k") as fs:
        (fs / "scratch").mkdir()
        place.scratch = fs / "scratch"
        fault = faults.inject("meters with its scratch folder on a full disk")
        filler = support.fill(fs)
        result = place.run("meters")
        filler.unlink()
        after = support.assert_intact(fault, baseline_fp, place)
        text = support.assert_clear_failure(result, "meters")
        _blames_machine(text, FULL, result)
        row = support.assert_failed_row(baseline_fp, after, "meters", "2026-04")
        assert FULL.search(row["manifest"]["reason"]), row["manifest"]["reason"]
        assert not list((fs / "scratch").iterdir()), "the failed run left its scratch folder"
        fault.survived = True


# --- 4. read-only storage --------------------------------------------------------------------------
# chmod does not stop root: the folder is a tmpfs remounted read-only.


@pytest.mark.parametrize("what", ["catalog", "lake"])
def test_read_only_warehouse(what, baseline, baseline_fp, tmp_path, faults):
    with support.tmpfs(tmp_path / f"{what}fs", "32m") as fs:
        if what == "catalog":
            place = support.copy_place(baseline, tmp_path / "case", catalog_dir=fs)
        else:
            place = support.copy_place(baseline, tmp_path / "case", lake_dir=fs / "lake")
        fault = faults.inject(f"ncc11 publishing with the {what} read-only")
        support.remount(fs, "ro")
        try:
            result = place.run("ncc11")
        finally:
            support.remount(fs, "rw")
        support.assert_intact(fault, baseline_fp, place)
        text = support.assert_clear_failure(result, "ncc11")
        _blames_machine(text, READ_ONLY, result)
        _no_strays_after_maintenance(place)
        fault.survived = True
