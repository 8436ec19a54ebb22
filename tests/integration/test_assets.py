"""Data-aware scheduling under a real scheduler: an asset event makes the scheduler itself start the
consumer DAG for the period the event names.

- An upstream system announces a quarter's new programming inputs: ncc11_quarterly runs that quarter.
- A month of meter readings is closed: vpn_delivery_monthly reviews that month. meter_readings
  emits this event with extra {"month": ...} (checked in test_scheduler.py); here the event is
  posted through the REST API the same way, because unpausing meter_readings in a deployment that
  creates scheduled runs would first catch up every day since its start date.

Its own deployment: the scheduler must create runs here (use_job_schedule on). meter_readings stays
paused; vpn_delivery_monthly's monthly catch-up runs (one at a time) go on beside the test's run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from pipelines import warehouse
from tests.integration.conftest import Deployment
from tests.integration.stack import ROOT, wait_for

PROGRAMMING_INPUTS = "mayorista://landing/ncc11"
MONTH_CLOSED = "mayorista://smec/meter_month_closed"


@pytest.fixture(scope="module")
def scheduling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("airflow-assets")
    shutil.copytree(ROOT / "data" / "sample", root / "landing")
    deployment = Deployment(
        root,
        "sqlite",
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow' / 'airflow.db'}",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        },
        unpaused=("ncc11_quarterly", "vpn_delivery_monthly"),
    )
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stack.stop()
        assert not deployment.stack.pids()


def test_new_programming_inputs_trigger_that_quarters_run(scheduling: Deployment):
    stack = scheduling.stack
    event = stack.api.post_asset_event(PROGRAMMING_INPUTS, {"quarter": "2026-05"})

    def triggered() -> list[dict]:
        runs = stack.api.call("GET", "/dags/ncc11_quarterly/dagRuns", params={"run_type": "asset_triggered"})[
            "dag_runs"
        ]
        return [r for r in runs if r["state"] in ("success", "failed")]

    runs = wait_for("an asset-triggered ncc11_quarterly run to finish", triggered, 300, every=1)
    assert [r["state"] for r in runs] == ["success"], stack.api.task_report("ncc11_quarterly", runs[0]["dag_run_id"])
    assert event["id"] in {e["id"] for e in stack.api.asset_events(PROGRAMMING_INPUTS)}

    con = warehouse.connect(scheduling.warehouse, read_only=True)
    try:
        # what the event's run published (its pipeline runs are named after its Airflow run id): the
        # scheduler's own scheduled run of this deployment may have published the quarter of its interval
        # (2026-08 in the sample) by now too, depending on how fast the machine is
        published = con.execute(
            "SELECT period FROM run_manifests WHERE pipeline = 'ncc11' AND status = 'published' "
            "AND starts_with(run_id, ?)",
            [runs[0]["dag_run_id"] + "-"],
        ).fetchall()
        assert published == [("2026-05",)], published  # the quarter the event named, only
        quarters = con.sql(
            "SELECT quarter, count(*), count(DISTINCT distributor) FROM ncc11_energy WHERE quarter = '2026-05' "
            "GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    assert len(quarters) == 1, quarters
    assert quarters[0][1] == 3 * quarters[0][2] > 0  # one row per distributor and band


def test_a_closed_meter_month_triggers_its_delivery_check(scheduling: Deployment):
    stack = scheduling.stack
    stack.api.post_asset_event(MONTH_CLOSED, {"month": "2026-04"})

    def triggered() -> list[dict]:
        runs = stack.api.call("GET", "/dags/vpn_delivery_monthly/dagRuns", params={"run_type": "asset_triggered"})[
            "dag_runs"
        ]
        return [r for r in runs if r["state"] in ("success", "failed")]

    runs = wait_for("an asset-triggered vpn_delivery_monthly run to finish", triggered, 420, every=1)
    run_id = runs[0]["dag_run_id"]
    assert [r["state"] for r in runs] == ["success"], stack.api.task_report("vpn_delivery_monthly", run_id)

    con = warehouse.connect(scheduling.warehouse, read_only=True)
    try:
        # what that run published: the month the event named, and only that month
        published = con.sql(
            "SELECT period, status FROM run_manifests WHERE pipeline = 'delivery' AND starts_with(run_id, ?)",
            params=[run_id],
        ).fetchall()
        reviewed = con.sql("SELECT count(*) FROM vpn_change_review WHERE month = '2026-04'").fetchall()[0][0]
    finally:
        con.close()
    assert published == [("2026-04", "published")], published
    assert reviewed > 0
