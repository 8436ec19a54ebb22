"""The ncc11_expost DAG (real Airflow, dag.test()): wired like the delivery check (a closed metering
month or the monthly timetable), one mapped, single-writer task per quarter; a run for the interval of
a metered month re-runs the quarter holding it and writes the report; `mayorista backfill expost`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pendulum
import pytest

from pipelines import assets, backfill, warehouse
from pipelines.ncc11 import expost, job
from tests.conftest import ROOT
from tests.ncc11.fixtures import QUARTER, write_quarter
from tests.ncc11.test_expost import MARCH_COMPLETENESS, MARCH_HOURS, _publish_metering

GT = pendulum.timezone("America/Guatemala")


@pytest.fixture
def dag():
    from airflow.models import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "ncc11_expost.py")).dags["ncc11_expost"]


@pytest.fixture
def metered_march(workspace: Path, tmp_path: Path) -> Path:
    job.run(QUARTER, write_quarter(tmp_path / "in"))
    wh = workspace / "warehouse.sqlite"
    _publish_metering(wh, {"2026-03": (MARCH_HOURS, MARCH_COMPLETENESS)})
    return wh


def test_dag_is_thin_triggered_by_the_closed_month_and_single_writer(dag):
    assert [t.task_id for t in dag.topological_sort()] == ["quarters", "run_quarter"]
    assert dag.max_active_runs == 1 and dag.doc_md
    assert dag.timetable.asset_condition.uri == assets.METER_MONTH_CLOSED  # the delivery check's event too
    run_quarter = dag.get_task("run_quarter")
    assert run_quarter.max_active_tis_per_dag == 1
    assert assets.table("ncc11_expost") in {a.uri for a in run_quarter.outlets}


def test_quarters_holding_a_month_are_the_published_ones(metered_march):
    assert expost.quarters_holding(["2026-04"]) == [QUARTER]
    assert expost.quarters_holding(["2026-03", "2026-05"]) == [QUARTER]
    assert expost.quarters_holding(["2026-09"]) == []  # no published quarter holds it: nothing to do


def test_a_run_for_a_metered_months_interval_publishes_its_quarter(dag, airflow_home, metered_march):
    # no params: the monthly run of 2026-04-01 covers March, which quarter 2026-03 holds
    run = dag.test(logical_date=datetime(2026, 4, 1, 7, tzinfo=GT))
    assert run.state == "success"
    runs = warehouse.query("SELECT run_id, status FROM run_manifests WHERE pipeline = 'expost'").rows()
    assert len(runs) == 1 and runs[0][1] == "published" and QUARTER in runs[0][0]
    months = warehouse.query("SELECT DISTINCT month FROM ncc11_expost")["month"].to_list()
    assert months == ["2026-03"]  # April and May not metered yet
    report = metered_march.parent / "lake" / "reports" / "ncc11" / f"quarter={QUARTER}" / f"ncc11-{QUARTER}.html"
    assert report.exists()


def test_backfill_of_expost_quarters(metered_march):
    assert [q.label for q in backfill.period_range("expost", "2026-03", "2026-09")] == ["2026-03", "2026-06", "2026-09"]
    done = backfill.backfill("expost", "2026-03", "2026-03", progress=False)
    assert done.succeeded == ["2026-03"] and not done.failed
    assert warehouse.query("SELECT count(*) AS n FROM ncc11_expost")["n"][0] == 6
