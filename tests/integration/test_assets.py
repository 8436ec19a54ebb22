"""Data-aware scheduling under a real scheduler: an upstream system announces a quarter's new
programming inputs (an asset event) and the scheduler itself starts ncc11_quarterly for that quarter.

Its own deployment: the scheduler must create runs here (use_job_schedule on), and only
ncc11_quarterly is unpaused so that the catch-up DAGs do not queue months of runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import duckdb
import pytest

from tests.integration.conftest import Deployment
from tests.integration.stack import ROOT, wait_for

PROGRAMMING_INPUTS = "mayorista://landing/ncc11"


@pytest.fixture(scope="module")
def scheduling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("airflow-assets")
    shutil.copytree(ROOT / "data" / "sample", root / "landing")
    deployment = Deployment(root, "sqlite", {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow' / 'airflow.db'}",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
    }, unpaused=("ncc11_quarterly",))
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stack.stop()
        assert not deployment.stack.pids()


def test_new_programming_inputs_trigger_that_quarters_run(scheduling: Deployment):
    stack = scheduling.stack
    event = stack.post_asset_event(PROGRAMMING_INPUTS, {"quarter": "2026-05"})

    def triggered() -> list[dict]:
        runs = stack.api("GET", "/dags/ncc11_quarterly/dagRuns", params={"run_type": "asset_triggered"})["dag_runs"]
        return [r for r in runs if r["state"] in ("success", "failed")]

    runs = wait_for("an asset-triggered ncc11_quarterly run to finish", triggered, 300, every=1)
    assert [r["state"] for r in runs] == ["success"], stack.task_report("ncc11_quarterly", runs[0]["dag_run_id"])
    assert event["id"] in {e["id"] for e in stack.asset_events(PROGRAMMING_INPUTS)}

    con = duckdb.connect(str(scheduling.warehouse), read_only=True)
    try:
        quarters = con.sql("SELECT quarter, count(*), count(DISTINCT distributor) FROM ncc11_energy GROUP BY 1").fetchall()
    finally:
        con.close()
    assert len(quarters) == 1 and quarters[0][0] == "2026-05", quarters  # the quarter the event named, only
    assert quarters[0][1] == 3 * quarters[0][2] > 0  # one row per distributor and band
