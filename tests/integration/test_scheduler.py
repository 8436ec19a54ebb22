"""End to end under a real scheduler (PostgreSQL + LocalExecutor where available, as in CI; SQLite elsewhere): the
three DAGs triggered through the REST API, running at the same time against one DuckDB file; a bad
input file that fails a run and its retry; `airflow backfill create`; and a crash of every Airflow
process in the middle of a run followed by a re-run.

The runs' results are compared with the same pipelines called directly (no Airflow): the scheduler
must publish exactly the rows the library computes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import warehouse as wh
from tests.integration.conftest import Deployment
from tests.integration.stack import wait_for

QUARTER, MONTH = "2026-05", "2026-04"
# logical dates (UTC) whose data intervals are the sample periods; the params name them anyway.
# A DAG has one run per logical date, so later runs of the same period use other minutes.
RUNS = {
    "ncc11_quarterly": ({"quarter": QUARTER}, "2026-08-01T06:00:00Z"),
    "meter_readings": ({"month": MONTH}, "2026-04-30T07:00:00Z"),
    "vpn_delivery_monthly": ({"month": MONTH}, "2026-05-01T12:00:00Z"),
}
# (table, period filter) that must equal the direct computation; volatile columns are left out
COMPARED = {
    "ncc11_energy": f"quarter = '{QUARTER}'",
    "ncc11_power_month": f"quarter = '{QUARTER}'",
    "ncc11_power": f"quarter = '{QUARTER}'",
    "meter_completeness": f"month = '{MONTH}'",
    "meter_hourly": f"month = '{MONTH}'",
    "vee_findings": f"month = '{MONTH}'",
    "quarantine": f"month = '{MONTH}'",
    "delivery_compliance": f"month = '{MONTH}'",
    # rule 6(a) `interrogation` reads the month's meter_completeness as published when the check runs;
    # here the three DAGs run at once, so whether the meters were published first is not fixed
    "vpn_change_review": f"month = '{MONTH}' AND rule <> 'interrogation'",
}
KEYS = {
    "meter_hourly": "point_id, hour, channel",
    "meter_completeness": "point_id, month, channel",
    "ncc11_energy": "quarter, distributor, band",
    "ncc11_power": "quarter, distributor",
}


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample periods computed by calling the pipelines directly, into a separate warehouse."""
    from pipelines.delivery import job as delivery
    from pipelines.metering import job as metering
    from pipelines.ncc11 import job as ncc11
    from tests.integration.stack import ROOT

    out = tmp_path_factory.mktemp("reference")
    wh_path, lake, sample = out / "warehouse.sqlite", out / "lake", ROOT / "data" / "sample"
    ncc11.run(QUARTER, sample / "ncc11" / QUARTER, warehouse=wh_path, lake_root=lake)
    metering.ingest_month(MONTH, sample / "smec", warehouse=wh_path, lake_root=lake)
    delivery.check_month(MONTH, sample / "smec", warehouse=wh_path, lake_root=lake)
    return str(wh_path)


def differences(ours: str, reference: str, table: str, where: str) -> tuple[int, int, int]:
    """(rows here, rows in the reference, groups that differ) for one table. Rows are grouped by all
    their non-float columns; each group must have the same row count and the same sum of every float
    column up to rounding (the DAG sums in a different order from the one-shot job: last-bit noise)."""
    con = wh.connect(ours, read_only=True)
    try:
        con.sql("USE memory")
        wh.attach(con, reference, "ref", read_only=True)
        cols = con.sql(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = 'ref' AND table_name = ? "
            "AND column_name NOT IN ('run_id', 'checked_at', 'started_at', 'finished_at') ORDER BY ordinal_position",
            params=[table],
        ).fetchall()
        floats = [f'"{c}"' for c, t in cols if t in ("DOUBLE", "FLOAT", "REAL")]
        keys = [f'"{c}"' for c, t in cols if t not in ("DOUBLE", "FLOAT", "REAL")]
        sums = "".join(f", sum({c}) AS {c}" for c in floats)

        def grouped(db: str) -> str:
            return f"SELECT {', '.join(keys)}, count(*) AS _n{sums} FROM {db}.{table} WHERE {where} GROUP BY ALL"

        same = " AND ".join([f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in keys])
        close = " AND ".join(
            ["a._n = b._n"]
            + [f"(abs(a.{c} - b.{c}) <= 1e-9 * (1 + abs(b.{c})) OR (a.{c} IS NULL AND b.{c} IS NULL))" for c in floats]
        )
        ((n_ours,),) = con.sql(f"SELECT count(*) FROM wh.{table} WHERE {where}").fetchall()
        ((n_ref,),) = con.sql(f"SELECT count(*) FROM ref.{table} WHERE {where}").fetchall()
        ((diff,),) = con.sql(
            f"SELECT count(*) FROM ({grouped('wh')}) a FULL JOIN ({grouped('ref')}) b ON {same} "
            f"WHERE a._n IS NULL OR b._n IS NULL OR NOT ({close})"
        ).fetchall()
        return n_ours, n_ref, diff
    finally:
        con.close()


def snapshot(warehouse: str, tables: list[str]) -> dict[str, list[tuple]]:
    con = wh.connect(warehouse, read_only=True)
    try:
        return {t: con.sql(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


def duplicated_keys(warehouse: str) -> dict[str, int]:
    con = wh.connect(warehouse, read_only=True)
    try:
        return {
            t: con.sql(f"SELECT count(*) - count(DISTINCT ({k})) FROM {t}").fetchall()[0][0] for t, k in KEYS.items()
        }
    finally:
        con.close()


def assert_matches_reference(deployment: Deployment, reference: Path) -> None:
    for table, where in COMPARED.items():
        n_ours, n_ref, diff = differences(deployment.warehouse, reference, table, where)
        assert (n_ours, diff) == (n_ref, 0), f"{table}: {n_ours} rows vs {n_ref} computed directly, {diff} differ"
        assert n_ref > 0 or table in ("vee_findings", "quarantine"), f"{table} is empty: the check proves nothing"


def test_three_dags_run_in_parallel_and_publish_what_the_pipelines_compute(deployment: Deployment, reference: Path):
    stack = deployment.stack
    runs = {
        dag_id: stack.api.trigger(dag_id, logical_date, conf, f"it-{dag_id}")
        for dag_id, (conf, logical_date) in RUNS.items()
    }
    states = {dag_id: stack.api.wait_run(dag_id, run_id) for dag_id, run_id in runs.items()}
    assert states == dict.fromkeys(RUNS, "success"), "\n".join(stack.api.task_report(d, r) for d, r in runs.items())

    # LocalExecutor ran tasks of different DAGs at the same time, all writing one warehouse
    spans = sorted(
        (ti["start_date"], ti["end_date"], d)
        for d, r in runs.items()
        for ti in stack.api.call("GET", f"/dags/{d}/dagRuns/{r}/taskInstances")["task_instances"]
    )
    assert any(later[0] < earlier[1] and later[2] != earlier[2] for earlier, later in zip(spans, spans[1:])), spans

    assert_matches_reference(deployment, reference)
    assert duplicated_keys(deployment.warehouse) == dict.fromkeys(KEYS, 0)

    # the whole-month meter run announced the month closed, for the delivery check to start on
    closed = [
        (e["source_run_id"], e["extra"].get("month"))
        for e in stack.api.asset_events("mayorista://smec/meter_month_closed")
    ]
    assert closed == [(runs["meter_readings"], MONTH)], closed


def test_bad_input_fails_leaves_the_warehouse_as_it_was_and_the_retry_succeeds(deployment: Deployment, reference: Path):
    stack = deployment.stack
    tables = ["ncc11_energy", "ncc11_power_month", "ncc11_power"]
    before = snapshot(deployment.warehouse, tables)
    assert before["ncc11_energy"], "the previous test published the quarter"

    quarter_dir = deployment.landing / "ncc11" / QUARTER
    demand = quarter_dir / "total_demand.csv"
    good = demand.read_text()
    lines = good.splitlines(keepends=True)
    lines[5] = lines[5].rsplit(",", 1)[0] + ",12O.5\n"  # a letter O instead of a zero
    demand.write_text("".join(lines))
    try:
        run_id = stack.api.trigger(
            "ncc11_quarterly", "2026-08-01T06:01:00Z", {"quarter": QUARTER}, "it-ncc11-bad-input"
        )
        assert stack.api.wait_run("ncc11_quarterly", run_id) == "failed"
        states = stack.api.task_states("ncc11_quarterly", run_id)
        assert states["run_quarter"] == "failed", states
        log = stack.api.task_log("ncc11_quarterly", run_id, "run_quarter")
        assert "total_demand" in log and "12O.5" in log, log[-2000:]  # the error names the file and value
        assert snapshot(deployment.warehouse, tables) == before
    finally:
        demand.write_text(good)

    stack.api.clear_failed("ncc11_quarterly", run_id)  # the operator fixed the file; the same run goes again
    assert stack.api.wait_run("ncc11_quarterly", run_id) == "success", stack.api.task_report("ncc11_quarterly", run_id)
    assert_matches_reference(deployment, reference)
    assert duplicated_keys(deployment.warehouse) == dict.fromkeys(KEYS, 0)


def _backfill_runs(stack, dag_id: str) -> list[dict]:
    runs = stack.api.call("GET", f"/dags/{dag_id}/dagRuns", params={"run_type": "backfill", "limit": 100})["dag_runs"]
    return runs


def test_airflow_backfill_create_runs_days_and_a_quarter(deployment: Deployment, reference: Path):
    stack = deployment.stack
    # three days of April (each re-ingests April) and the one sample quarter. The CLI's dates are UTC
    # midnights; the runs' logical dates are 01:00 (meters) and 00:00 (NCC-11) Guatemala time (UTC-6).
    for dag_id, start, end in (
        ("meter_readings", "2026-04-27", "2026-04-30"),
        ("ncc11_quarterly", "2026-05-01", "2026-05-02"),
    ):
        # no --max-active-runs: a backfill ignores the DAG's max_active_runs (its own default is 10), so
        # the writer tasks' max_active_tis_per_dag=1 is what keeps one meter ingest at a time
        done = stack.backfill_create(dag_id, start, end)
        assert done.returncode == 0, done.stdout + done.stderr

    def finished() -> bool:
        runs = _backfill_runs(stack, "meter_readings") + _backfill_runs(stack, "ncc11_quarterly")
        return len(runs) == 4 and all(r["state"] in ("success", "failed") for r in runs)

    wait_for("the backfill runs to finish", finished, 480, every=1)
    meters = _backfill_runs(stack, "meter_readings")
    quarters = _backfill_runs(stack, "ncc11_quarterly")
    reports = "\n".join(
        stack.api.task_report(r["dag_id"], r["dag_run_id"]) for r in meters + quarters if r["state"] != "success"
    )
    assert sorted(r["logical_date"][:10] for r in meters) == ["2026-04-27", "2026-04-28", "2026-04-29"]
    assert {r["state"] for r in meters + quarters} == {"success"}, reports
    assert quarters[0]["data_interval_start"][:10] == "2026-05-01"
    ingests = sorted(
        (ti["start_date"], ti["end_date"])
        for r in meters
        for ti in stack.api.call("GET", f"/dags/meter_readings/dagRuns/{r['dag_run_id']}/taskInstances")[
            "task_instances"
        ]
        if ti["task_id"] == "ingest"
    )
    assert len(ingests) == 3 and all(a[1] <= b[0] for a, b in zip(ingests, ingests[1:])), ingests  # never two at once
    # four runs re-published the same periods: replaced, never duplicated
    assert_matches_reference(deployment, reference)
    assert duplicated_keys(deployment.warehouse) == dict.fromkeys(KEYS, 0)


def test_crash_of_every_airflow_process_mid_run_then_the_rerun_has_no_duplicates(
    deployment: Deployment, reference: Path
):
    stack = deployment.stack
    run_id = stack.api.trigger("meter_readings", "2026-04-30T07:01:00Z", {"month": MONTH}, "it-meters-crash")
    wait_for(
        "the ingest task to be running",
        lambda: stack.api.task_states("meter_readings", run_id).get("ingest") == "running",
        300,
        every=0.2,
        on_timeout=lambda: stack.api.task_report("meter_readings", run_id),
    )
    stack.kill()  # scheduler, executor, task process and API server, all at once

    stack = deployment.restart()
    # The restarted scheduler finds the dead scheduler's running task and resets it, so the run goes on
    # and the task runs again; were it failed instead (heartbeat timeout), the operator clears it.
    if stack.api.wait_run("meter_readings", run_id, timeout=300) == "failed":
        stack.api.clear_failed("meter_readings", run_id)
        assert stack.api.wait_run("meter_readings", run_id) == "success", stack.api.task_report(
            "meter_readings", run_id
        )
    tries = {
        ti["task_id"]: ti["try_number"]
        for ti in stack.api.call("GET", f"/dags/meter_readings/dagRuns/{run_id}/taskInstances")["task_instances"]
    }
    assert tries["ingest"] >= 2, tries  # the killed try did not count as done: ingest ran again

    assert_matches_reference(deployment, reference)
    assert duplicated_keys(deployment.warehouse) == dict.fromkeys(KEYS, 0)
