"""SIGKILL at every point of a run (reliability issue, fault injection 2).

For each pipeline, on a copy of the good baseline, in sequence:
  1. a kill by timing, once the run is reading its inputs,
  2. MAYORISTA_KILL_AT=before_publish, 3. mid_publish (rows inserted, not committed): the previous
     good rows must be intact after each,
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
    # scipy's shared objects in the process's memory map say the run is that far
    return lambda proc: support.maps_contain(proc.pid, "scipy")


def _scratch_of(place: support.Place, pid: int) -> list[str]:
    return [p.name for p in place.scratch.iterdir() if p.name.endswith(f".{pid}")]


def _killed(place: support.Place, pipeline: str, *, kill_at: str | None = None):
    """Run `pipeline`, killed by MAYORISTA_KILL_AT or, without it, by timing. Returns (pid, result)."""
    started = time.monotonic()
    proc, argv = place.start(pipeline, **({"MAYORISTA_KILL_AT": kill_at} if kill_at else {}))
    if kill_at is None:
        ready = _reading(pipeline, place)
        support.kill_when(proc, lambda: ready(proc))
    result = support.finish(proc, argv, started)
    assert result.returncode == -signal.SIGKILL, f"the run was not killed ({kill_at or 'by timing'}):\n{result}"
    return proc.pid, result


@pytest.mark.parametrize("pipeline", ["ncc11", "meters", "delivery"])
def test_killed_runs_keep_previous_results_and_leave_nothing_behind(pipeline, place, baseline_fp, faults):
    p = PIPELINES[pipeline]
    killed_pids = []

    # 1-3: killed before anything is committed: the previous good rows are exactly as they were
    for kill_at in (None, "before_publish", "mid_publish"):
        fault = faults.inject(f"SIGKILL {kill_at or 'by timing, while reading'}")
        pid, result = _killed(place, pipeline, kill_at=kill_at)
        killed_pids.append(pid)
        if pipeline == "meters":
            assert _scratch_of(place, pid), f"the killed run left no scratch folder to clean up ({fault.name})"
        after = support.assert_intact(fault, baseline_fp, place, when=f"({kill_at or 'timed'}) ")
        assert not support.new_runs(baseline_fp, after), "a killed run cannot have recorded itself"
        fault.survived = True

    # 4: killed right after the commit: the new rows are complete (same inputs: same content)
    fault = faults.inject("SIGKILL after_publish")
    pid, result = _killed(place, pipeline, kill_at="after_publish")
    killed_pids.append(pid)
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
    left = sorted(p_.name for p_ in place.scratch.iterdir())
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
