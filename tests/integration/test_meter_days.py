"""Daily `meter_readings` runs under a real scheduler (SQLite, and PostgreSQL + LocalExecutor when
available), started by `airflow backfill create` over a landing folder of small daily files (one CSV
per participant per day, as PrimeRead lands them):

- each run reads only the files that are new when it runs (the ledger, `landed_files`), and a file
  already ingested is never read again: `files_read` / `files_skipped` in each run's manifest;
- the month the daily runs built (from stored readings plus each run's new rows) equals what one run
  over all the files computes (meter_completeness, meter_hourly, vee_findings);
- nothing is stored twice in meter_readings;
- each run wrote the month's report as of the snapshot it published.

Two backfills, with files landing in between: days 1-2 landed, then the backfill of days 1 and 2 (one
run at a time, in day order): the day-1 run reads the 2 x 5 files of both landed days, the day-2 run
finds nothing new. Then day 3 lands and the backfill of day 3 reads exactly its 5 files. (The ledger
works per month: a run reads every new file of its month or earlier, so a backfill over days that
have all landed reads them in its first run; what matters is that no file is read twice.)

Its own deployment (the fixture is per module): a landing folder of 6 points, nothing else; on one
profile only, the production one (PostgreSQL + LocalExecutor) where CI provides it: what the daily
runs check is the ledger and the month, not the metadata database, which test_scheduler.py covers
on both."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines import warehouse as wh
from tests.integration.conftest import ONE_PROFILE, Deployment, deploy
from tests.integration.stack import wait_for
from tests.integration.test_scheduler import differences

MONTH = "2026-03"
DAYS = [date(2026, 3, 1) + timedelta(days=k) for k in range(3)]
POINTS = 6  # PM-001..PM-006 of the sample registry: 5 participants, one with 2 points
PARTICIPANTS = 5
COMPARED = {t: f"month = '{MONTH}'" for t in ("meter_completeness", "meter_hourly", "vee_findings")}


def _registry() -> pl.DataFrame:
    from pipelines.metering import sample

    return sample.registry().filter(pl.col("point_id").is_in([f"PM-{n:03d}" for n in range(1, POINTS + 1)]))


def land_days(smec: Path, days: list[date]) -> list[str]:
    """One CSV per participant per day under <smec>/readings/<participant>/; returns their ledger labels."""
    from pipelines.metering import sample

    reg = _registry()
    series = sample._series(MONTH, reg, np.random.default_rng(11))
    labels = []
    for day in days:
        start = datetime.combine(day, datetime.min.time())
        of_day = series.filter((pl.col("interval_end") > start) & (pl.col("interval_end") <= start + timedelta(days=1)))
        for (participant,), rows in of_day.group_by("_participant", maintain_order=True):
            folder = smec / "readings" / participant
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{participant}_{day}.csv"
            rows.drop("_point", "_participant").write_csv(path, datetime_format="%Y-%m-%d %H:%M")
            labels.append(path.relative_to(smec).as_posix())
    return labels


@pytest.fixture(scope="module", params=[ONE_PROFILE])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def days_landing(deployment: Deployment) -> Path:
    """The deployment's <landing>/smec replaced by this test's registry (no readings yet)."""
    smec = deployment.landing / "smec"
    shutil.rmtree(smec)
    smec.mkdir()
    _registry().write_csv(smec / "metering_points.csv", date_format="%Y-%m-%d")
    return smec


def _backfill(deployment: Deployment, start: date, end: date, expected: int) -> list[dict]:
    """`airflow backfill create` over [start, end) (one run at a time); waits for its runs to finish."""
    stack = deployment.stack
    done = stack.backfill_create("meter_readings", f"{start}", f"{end}", "--max-active-runs", "1")
    assert done.returncode == 0, done.stdout + done.stderr

    def runs() -> list[dict]:
        return stack.api.call("GET", "/dags/meter_readings/dagRuns", params={"run_type": "backfill", "limit": 100})[
            "dag_runs"
        ]

    def finished() -> list[dict]:
        found = [r for r in runs() if start.isoformat() <= r["logical_date"][:10] < end.isoformat()]
        return found if len(found) == expected and all(r["state"] in ("success", "failed") for r in found) else []

    found = wait_for(f"the backfill {start}..{end} to finish", finished, 300, every=1)
    # the scheduler marks the backfill completed a loop after its last run; until then another
    # backfill of the DAG is refused (AlreadyRunningBackfill)
    wait_for(
        "the backfill to be marked completed",
        lambda: all(
            b["completed_at"]
            for b in stack.api.call("GET", "/backfills", params={"dag_id": "meter_readings"})["backfills"]
        ),
        60,
    )
    failed = "\n".join(
        stack.api.task_report("meter_readings", r["dag_run_id"]) for r in found if r["state"] != "success"
    )
    assert not failed, failed
    return sorted(found, key=lambda r: r["logical_date"])


def _manifests(warehouse: str) -> dict[str, dict]:
    """run_id -> the manifest's counts, for the meters runs."""
    con = wh.connect(warehouse, read_only=True)
    try:
        rows = con.sql(
            "SELECT run_id, manifest FROM run_manifests WHERE pipeline = 'meters' AND status = 'published'"
        ).fetchall()
    finally:
        con.close()
    return {run_id: json.loads(manifest)["counts"] for run_id, manifest in rows}


def _counts_of(manifests: dict[str, dict], dag_run_id: str) -> dict:
    found = [c for run_id, c in manifests.items() if run_id.startswith(dag_run_id)]
    assert len(found) == 1, (dag_run_id, list(manifests))
    return found[0]


def _rows(warehouse: str, sql: str) -> list[tuple]:
    con = wh.connect(warehouse, read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(days_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The month computed by one direct run over all three days' files (no Airflow), in its own warehouse."""
    from pipelines.metering import job

    out = tmp_path_factory.mktemp("days-reference")
    smec = out / "smec"
    smec.mkdir()
    shutil.copy(days_landing / "metering_points.csv", smec / "metering_points.csv")
    land_days(smec, DAYS)
    result = job.ingest_month(MONTH, smec, warehouse=out / "warehouse.sqlite", lake_root=out / "lake")
    assert result.counts["files_read"] == PARTICIPANTS * len(DAYS)
    return str(out / "warehouse.sqlite")


def test_daily_backfill_reads_each_landed_file_once_and_builds_the_month(
    deployment: Deployment, days_landing: Path, reference: str
):
    first = land_days(days_landing, DAYS[:2])
    runs = _backfill(deployment, DAYS[0], DAYS[2], expected=2)
    assert [r["logical_date"][:10] for r in runs] == [f"{DAYS[0]}", f"{DAYS[1]}"]
    manifests = _manifests(deployment.warehouse)
    day1, day2 = (_counts_of(manifests, r["dag_run_id"]) for r in runs)
    # day 1: every file landed so far is new; day 2: nothing new, nothing parsed again
    assert (day1["files_read"], day1["files_skipped"]) == (len(first), 0), day1
    assert (day2["files_read"], day2["files_skipped"], day2["rows_read"]) == (0, len(first), 0), day2

    later = land_days(days_landing, DAYS[2:])
    (run3,) = _backfill(deployment, DAYS[2], DAYS[2] + timedelta(days=1), expected=1)
    day3 = _counts_of(_manifests(deployment.warehouse), run3["dag_run_id"])
    assert (day3["files_read"], day3["files_skipped"]) == (len(later), len(first)), day3
    assert day3["rows_read"] == day3["ingested"] == len(later) // PARTICIPANTS * POINTS * 4 * 96, day3

    # the ledger: every file once, ingested by the run that first saw it
    ledger = _rows(deployment.warehouse, "SELECT path, status, run_id FROM landed_files ORDER BY path")
    assert sorted(p for p, _, _ in ledger) == sorted(first + later), ledger
    assert {s for _, s, _ in ledger} == {"ingested"}, ledger
    by_run = {p: r for p, _, r in ledger}
    assert all(by_run[p].startswith(runs[0]["dag_run_id"]) for p in first), ledger
    assert all(by_run[p].startswith(run3["dag_run_id"]) for p in later), ledger

    # nothing stored twice, and every reading of the three days is there
    ((total, distinct),) = _rows(
        deployment.warehouse, "SELECT count(*), count(DISTINCT (point_id, channel, interval_end)) FROM meter_readings"
    )
    assert total == distinct == POINTS * 4 * 96 * len(DAYS), (total, distinct)

    # the month built from three daily runs = one run over all the files
    for table, where in COMPARED.items():
        n_ours, n_ref, diff = differences(deployment.warehouse, reference, table, where)
        assert (n_ours, diff) == (n_ref, 0), (
            f"{table}: {n_ours} rows vs {n_ref} from one run over all files, {diff} differ"
        )
    assert _rows(reference, "SELECT count(*) FROM meter_completeness")[0][0] == POINTS * 4

    # every run wrote the month's report, as of the snapshot it published (the last run's is there now)
    ((snapshot,),) = _rows(
        deployment.warehouse, f"SELECT snapshot_id FROM run_manifests WHERE starts_with(run_id, '{run3['dag_run_id']}')"
    )
    html = deployment.lake / "reports" / "meters" / f"month={MONTH}" / f"meters-{MONTH}.html"
    assert f"publicados en la instantánea {snapshot}" in html.read_text()
    states = {
        r["dag_run_id"]: deployment.stack.api.task_states("meter_readings", r["dag_run_id"]) for r in [*runs, run3]
    }
    assert all(s["report"] == "success" for s in states.values()), states
