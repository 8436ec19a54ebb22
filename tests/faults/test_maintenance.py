"""Maintenance under real operations (issue #19, items 1, 5 and 7).

- A publish paused between writing its data files and committing them (MAYORISTA_PAUSE_AT=mid_publish):
  `mayorista maintain` runs meanwhile (retention 0, the default safe age), the publish resumes: both
  exit 0, nothing it wrote is lost, every file of the current snapshot is on disk.
  On SQLite the paused run's transaction holds the catalog: maintenance's writing steps wait for it,
  then stop with a clear message (never a traceback), and succeed once the run has committed.
- A `--warehouse` that exists but is not a DuckLake catalog (another SQLite database, one in WAL mode
  like Airflow's, a zero-byte file) is refused untouched by every command: same bytes, no new files.
- `maintain` on a path with no catalog says so and creates nothing.
- A data file of the current snapshot missing or truncated: every command that reads it stops with exit
  2 naming the table, the partition and the file; `maintain --check` lists it; `maintain --repair` then
  a re-run of the period republishes it whole."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults import support
from tests.faults.support import MAYORISTA, PIPELINES


def _cli(place: support.Place, *args: str, **env: str) -> support.Result:
    return support.run_cli([MAYORISTA, *args], place.env(**env), cwd=place.root)


def _wait_for(path: Path, proc, what: str, within: float = 240.0) -> None:
    start = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, f"the process ended before {what}: {proc.communicate()}"
        assert time.monotonic() - start < within, f"{what} did not happen within {within} s"
        time.sleep(0.05)


def _all_current_files_on_disk(place: support.Place) -> None:
    on_disk = {str(f.resolve()) for f in (place.lake / "main").rglob("*.parquet")}
    missing = support.current_files(place) - on_disk
    assert not missing, f"files the current snapshot needs are gone: {sorted(missing)[:5]}"


# --- item 1: maintenance next to a publish in progress ------------------------------------------------


def test_maintenance_next_to_a_publish_about_to_commit_deletes_nothing_it_needs(place, baseline_fp, faults):
    fault = faults.inject("maintain (retention 0, default safe age) while an ncc11 publish waits to commit")
    resume = place.root / "resume"
    started = time.monotonic()
    proc, argv = place.start("ncc11", MAYORISTA_PAUSE_AT="mid_publish", MAYORISTA_PAUSE_FILE=str(resume))
    try:
        _wait_for(resume.with_name("resume.paused"), proc, "the publish reached mid_publish")
        # the publish has written data files that no commit records yet: they look like orphans
        pending = support.orphan_files(place)
        assert pending, "the paused publish has written no data file yet: the case would test nothing"
        # maintenance next to it: its first step (files no commit records) must keep the run's files,
        # younger than the safe age. On a SQLite catalog the run's open transaction holds the catalog, so
        # the steps that write it wait (here 5 s) and then stop with a clear message, or go on once the
        # run has committed
        maint_argv = [MAYORISTA, "maintain", "--warehouse", str(place.wh), "--retention-days", "0"]
        maint = subprocess.Popen(
            maint_argv,
            env=place.env(MAYORISTA_LOCK_WAIT_S="5"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=place.root,
        )
        during = support.finish(maint, maint_argv, started)
        still = [f for f in pending if Path(f).exists()]
        assert still == pending, f"maintenance deleted files of the publish in progress: {set(pending) - set(still)}"
        assert "Traceback" not in during.stderr, during
        if during.returncode != 0:
            assert "locked" in support.assert_clear_failure(during, "maintain"), during
    finally:
        resume.touch()
    result = support.finish(proc, argv, started)
    assert result.returncode == 0, f"the publish failed after maintenance ran next to it:\n{result}"
    maintained = _cli(place, "maintain", "--warehouse", str(place.wh), "--retention-days", "0")
    assert maintained.returncode == 0, f"maintenance after the publish failed:\n{maintained}"
    after = support.assert_intact(fault, baseline_fp, place, replaced=PIPELINES["ncc11"])
    published = [r for r in support.new_runs(baseline_fp, after).values() if r["status"] == "published"]
    # the run's commit, then maintenance's merge (waiting for it) on top: the run's is not the latest
    assert len(published) == 1 and published[0]["snapshot_id"] is not None, published
    _all_current_files_on_disk(place)
    checked = _cli(place, "maintain", "--check", "--warehouse", str(place.wh))
    assert checked.returncode == 0 and "intact" in checked.stdout, checked
    fault.survived = True


# --- item 5: a foreign database is never made a catalog ----------------------------------------------------


def _foreign(kind: str, path: Path) -> None:
    if kind == "zero-byte":
        path.write_bytes(b"")
        return
    con = sqlite3.connect(path)
    try:
        if kind == "wal-sqlite":  # like Airflow's own airflow.db
            con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id TEXT)")
        con.execute("INSERT INTO dag_run (dag_id) VALUES ('meter_readings'), ('ncc11_quarterly')")
        con.commit()
    finally:
        con.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["sqlite", "wal-sqlite", "zero-byte"])
def test_a_foreign_database_is_refused_untouched(kind, place, faults):
    fault = faults.inject(f"--warehouse naming a {kind} file that is not a DuckLake catalog")
    folder = place.root / "foreign"
    folder.mkdir()
    other = folder / "airflow.db"
    _foreign(kind, other)
    before, names = _digest(other), sorted(p.name for p in folder.iterdir())
    commands = {
        "ncc11": [*PIPELINES["ncc11"].argv, "--input", str(place.inputs / "ncc11"), "--lake", str(place.lake)],
        "maintain": ["maintain", "--retention-days", "0"],
        "sql": ["sql", "SELECT 1"],
    }
    for command, args in commands.items():
        result = _cli(place, *args, "--warehouse", str(other))
        text = support.assert_clear_failure(result, command)
        assert "is not a warehouse catalog" in text and str(other) in text, result
        assert _digest(other) == before, f"`mayorista {command}` changed {other.name}"
        assert sorted(p.name for p in folder.iterdir()) == names, f"`mayorista {command}` left files next to it"
    fault.survived = True


def test_maintain_on_a_path_with_no_catalog_creates_nothing(place, faults):
    fault = faults.inject("maintain --warehouse naming a path where no catalog exists")
    missing = place.root / "nowhere" / "wh.sqlite"
    result = _cli(place, "maintain", "--warehouse", str(missing))
    text = support.assert_clear_failure(result, "maintain")
    assert "no warehouse" in text and str(missing) in text, result
    assert not missing.exists() and not missing.parent.exists(), "maintain created a catalog"
    fault.survived = True


# --- item 7: a damaged data file of the current snapshot ---------------------------------------------------


def _ncc11_energy_file(place: support.Place) -> Path:
    files = [Path(f) for f in support.current_files(place) if "/ncc11_energy/" in f]
    assert files, "no ncc11_energy data file in the baseline"
    return sorted(files)[0]


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_damaged_data_file_is_named_found_by_check_and_repaired_by_a_rerun(damage, place, baseline_fp, faults):
    fault = faults.inject(f"an ncc11_energy data file of the current snapshot {damage}")
    victim = _ncc11_energy_file(place)
    if damage == "missing":
        victim.unlink()
    else:
        data = victim.read_bytes()
        victim.write_bytes(data[: len(data) // 2])

    # every command that reads it: a clear exit 2 naming the table, the partition and the file
    for command, args in {
        "sql": ["sql", "SELECT sum(ccs_usd) FROM ncc11_energy"],
        "report": ["report", "ncc11", "--quarter", "2026-05", "--lake", str(place.lake)],
        "ncc11": [*PIPELINES["ncc11"].argv, "--input", str(place.inputs / "ncc11"), "--lake", str(place.lake)],
    }.items():
        result = _cli(place, *args, "--warehouse", str(place.wh))
        text = support.assert_clear_failure(result, command)
        for needle in ("ncc11_energy", "quarter=2026-05", victim.name, "maintain --check"):
            assert needle in text, f"`mayorista {command}` does not say {needle!r}:\n{result}"

    checked = _cli(place, "maintain", "--check", "--warehouse", str(place.wh))
    text = support.assert_clear_failure(checked, "maintain")
    assert "ncc11_energy" in text and victim.name in text and "1 of" in text, checked

    # the repair: the damaged file's partition is dropped, then a re-run of the quarter republishes it whole
    repaired = _cli(place, "maintain", "--repair", "--warehouse", str(place.wh))
    assert repaired.returncode == 0 and "ncc11_energy" in repaired.stdout, repaired
    rerun = place.run("ncc11")
    assert rerun.returncode == 0, f"the re-run after the repair failed:\n{rerun}"
    support.assert_intact(fault, baseline_fp, place, replaced=PIPELINES["ncc11"])
    checked = _cli(place, "maintain", "--check", "--warehouse", str(place.wh))
    assert checked.returncode == 0, checked
    fault.survived = True


def test_check_and_maintain_leave_a_healthy_warehouse_as_it_was(place, baseline_fp, faults):
    """The default safe age keeps a killed run's fresh files; the check reads every file as intact."""
    fault = faults.inject("maintain with the default safe age right after a run killed mid-publish")
    killed = place.run("ncc11", MAYORISTA_KILL_AT="mid_publish")
    assert killed.returncode != 0, killed
    leftovers = support.orphan_files(place)
    assert leftovers, "the killed run left no data file: the case would test nothing"
    result = _cli(place, "maintain", "--warehouse", str(place.wh), "--retention-days", "0")
    assert result.returncode == 0 and "older than 24 h" in result.stdout, result
    assert all(Path(f).exists() for f in leftovers), "files younger than the safe age were deleted"
    result = _cli(place, "maintain", "--warehouse", str(place.wh), "--retention-days", "0", "--min-age-hours", "0")
    assert result.returncode == 0, result
    assert not support.orphan_files(place), "--min-age-hours 0 left the killed run's files"
    support.assert_intact(fault, baseline_fp, place)
    checked = _cli(place, "maintain", "--check", "--warehouse", str(place.wh))
    assert checked.returncode == 0 and "intact" in checked.stdout, checked
    fault.survived = True
