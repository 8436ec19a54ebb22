"""SIGKILL at every point of a run (reliability issue, fault injection 2).

For each pipeline, on a copy of the good baseline, in sequence:
  1. a kill by timing, once the run is reading its inputs,
  2. MAYORISTA_KILL_AT=before_publish and 3. mid_publish (rows inserted, not committed), both at once:
     the previous good rows must be intact after each kill,
  4. after_publish (committed, reports not written): the new rows are complete,
  5. a normal run succeeds, has no duplicate keys, and removes the killed runs' scratch folders,
  6. `mayorista maintain --retention-days 0` deletes the Parquet files of the uncommitted publish:
     afterwards every data file under <lake>/main is referenced by the catalog."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults import support
from tests.faults.support import PIPELINES


def _reading(pipeline: str, place: support.Place):
    """When the run is reading its inputs (a deterministic sign seen from outside the process)."""
    if pipeline == "meters":  # its scratch folder appears when it starts staging the readings
        return lambda proc: any(place.scratch.iterdir())
    # NCC-11 imports GX in the background while it reads; delivery imports it once read (validate):
    # pandas' compiled modules (GX imports pandas first) in the process's memory map say the run is that far
    return lambda proc: support.maps_contain(proc.pid, "pandas/_libs")


def _scratch_of(place: support.Place, pid: int) -> list[str]:
    return [p.name for p in place.scratch.iterdir() if p.name.endswith(f".{pid}")]


def _start(place: support.Place, pipeline: str, kill_at: str | None):
    return time.monotonic(), *place.start(pipeline, **({"MAYORISTA_KILL_AT": kill_at} if kill_at else {}))


def _assert_killed(result: support.Result, kill_at: str | None) -> None:
    assert result.returncode == -signal.SIGKILL, f"the run was not killed ({kill_at or 'by timing'}):\n{result}"


@pytest.mark.parametrize("pipeline", ["ncc11", "meters", "delivery"])
def test_killed_runs_keep_previous_results_and_leave_nothing_behind(pipeline, place, baseline_fp, faults):
    p = PIPELINES[pipeline]
    killed_pids = []

    # 1: killed by timing while reading
    timed = faults.inject("SIGKILL by timing, while reading")
    started, proc, argv = _start(place, pipeline, None)
    ready = _reading(pipeline, place)
    support.kill_when(proc, lambda: ready(proc))
    _assert_killed(support.finish(proc, argv, started), None)
    killed_pids.append(proc.pid)
    if pipeline == "meters":
        assert _scratch_of(place, proc.pid), "the run killed while reading left no scratch folder to clean up"
    support.assert_intact(timed, baseline_fp, place, when="(timed) ")
    timed.survived = True

    # 2-3: killed before the commit and in the middle of it (rows inserted, not committed); the two runs
    # go at once (each dies before committing, so they cannot disturb each other): the previous good
    # rows must be exactly as they were
    points = ("before_publish", "mid_publish")
    injected = [faults.inject(f"SIGKILL {kill_at}") for kill_at in points]
    running = [_start(place, pipeline, kill_at) for kill_at in points]
    for kill_at, (started, proc, argv) in zip(points, running):
        _assert_killed(support.finish(proc, argv, started), kill_at)
        killed_pids.append(proc.pid)
        if pipeline == "meters":
            assert _scratch_of(place, proc.pid), f"the run killed at {kill_at} left no scratch folder to clean up"
    for fault in injected:
        after = support.assert_intact(fault, baseline_fp, place, when="(before/mid publish) ")
        assert not support.new_runs(baseline_fp, after), "a killed run cannot have recorded itself"
        fault.survived = True

    # 4: killed right after the commit: the new rows are complete (same inputs: same content)
    fault = faults.inject("SIGKILL after_publish")
    started, proc, argv = _start(place, pipeline, "after_publish")
    _assert_killed(support.finish(proc, argv, started), "after_publish")
    killed_pids.append(proc.pid)
    after_kill = support.assert_intact(fault, baseline_fp, place, replaced=p)
    published = [r for r in support.new_runs(baseline_fp, after_kill).values() if r["status"] == "published"]
    assert len(published) == 1 and published[0]["snapshot_id"] == after_kill.snapshot, published
    fault.survived = True

    # 5: the next run succeeds, replaces the period whole, and removes the dead runs' scratch folders
    result = place.run(pipeline)
    assert result.returncode == 0, f"the run after the kills failed:\n{result}"
    assert "Traceback" not in result.stderr, result
    after_run = support.assert_intact(faults.items[-1], baseline_fp, place, replaced=p, when="(next run) ")
    assert len([r for r in support.new_runs(baseline_fp, after_run).values() if r["status"] == "published"]) == 2
    if pipeline == "meters":  # rows read = rows stored + quarantined (the current run against the warehouse)
        run_id, row = max(after_run.manifests.items(), key=lambda kv: kv[1]["snapshot_id"] or -1)
        assert row["pipeline"] == "meters" and row["status"] == "published", row
        assert not support.meters_accounting_problems(place, run_id, row["manifest"])
    left = sorted(p_.name for p_ in place.scratch.iterdir() if p_.is_dir())  # not the publish lock file
    assert not left, f"scratch folders left after the next run (killed pids {killed_pids}): {left}"

    # 6: maintenance deletes the data files of the uncommitted publish; nothing unreferenced remains
    result = place.maintain()
    assert result.returncode == 0, result
    orphans = support.orphan_files(place)
    assert not orphans, f"files under the lake that no snapshot references after maintain: {orphans[:5]}"
    on_disk = {str(f.resolve()) for f in (place.lake / "main").rglob("*.parquet")}
    missing = support.current_files(place) - on_disk
    assert not missing, f"maintain deleted files the current snapshot needs: {sorted(missing)[:5]}"
    after_maintain = support.fingerprint(place)
    assert after_maintain.exact == after_run.exact, "maintain changed the published rows"
    for fault in faults.items:
        fault.survived = True
