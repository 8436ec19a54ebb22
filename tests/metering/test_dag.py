"""The meter_readings DAG: daily with catch-up, one writer, Assets declared, and a real run (dag.test())."""

from __future__ import annotations

from datetime import datetime

import pendulum
import pytest

from pipelines import warehouse
from pipelines.errors import InputError
from pipelines.metering.schedule import closes_month, run_month
from tests.conftest import ROOT

GT = pendulum.timezone("America/Guatemala")


@pytest.fixture(scope="module")
def dag():
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "meter_readings.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["meter_readings"]


def test_dag_is_daily_backfillable_and_single_writer(dag):
    assert dag.catchup is True and dag.max_active_runs == 1
    assert dag.start_date.date().isoformat() == "2026-03-01"
    assert [t.task_id for t in dag.topological_sort()] == [
        "period",
        "ingest",
        "report",
        "month_is_complete",
        "announce_month_closed",
    ]
    assert {a.uri for a in dag.get_task("announce_month_closed").outlets} == {"mayorista://smec/meter_month_closed"}
    # the month report follows the publish; the month-closed announcement does not wait for it
    assert dag.get_task("report").upstream_task_ids == {"ingest"}
    assert dag.get_task("month_is_complete").upstream_task_ids == {"ingest"}
    assert {a.uri for a in dag.get_task("report").outlets} == {"mayorista://lake/reports/meters"}
    outlets = {a.uri for a in dag.get_task("ingest").outlets}
    assert outlets == {
        f"mayorista://warehouse/{t}"
        for t in (
            "meter_readings",
            "meter_readings_superseded",
            "meter_estimates",
            "meter_completeness",
            "meter_hourly",
            "vee_findings",
            "quarantine",
            "metering_points",
            "landed_files",
        )
    }
    assert dag.get_task("ingest").max_active_tis_per_dag == 1
    assert dag.timetable.expression == "0 1 * * *" and str(dag.timetable.timezone) == "America/Guatemala"


def test_period_resolution():
    assert run_month("2026-04", "2026-03-31", None).label == "2026-04"  # month param wins
    assert run_month(None, "2026-03-31", None).label == "2026-03"
    # the run covering 31 March: data interval [2026-03-31 01:00, 2026-04-01 01:00) local
    assert run_month(None, None, datetime(2026, 3, 31, 1, tzinfo=GT)).label == "2026-03"
    assert (
        run_month(None, None, datetime(2026, 4, 1, 5, 59, tzinfo=pendulum.UTC)).label == "2026-03"
    )  # 23:59 local, 31 March
    with pytest.raises(InputError):
        run_month(None, "31/03/2026", None)


def test_the_last_daily_run_of_a_month_closes_it():
    assert closes_month(None, datetime(2026, 3, 31, 1, tzinfo=GT))
    assert not closes_month(None, datetime(2026, 3, 30, 1, tzinfo=GT))
    assert closes_month(None, datetime(2026, 4, 1, 5, 59, tzinfo=pendulum.UTC))  # 23:59 local, 31 March
    assert closes_month("2026-03", None)  # an explicit whole-month re-ingest
    assert not closes_month(None, None)


def test_dag_run_ingests_the_sample_month(airflow_home, workspace, dag):
    run = dag.test(
        logical_date=datetime(2026, 4, 20, 1, tzinfo=GT),
        run_conf={"month": "2026-04", "input_dir": str(ROOT / "data" / "sample" / "smec")},
    )
    assert run.state == "success"
    assert run.get_task_instance("announce_month_closed").state == "success"  # triggers the delivery check
    assert run.get_task_instance("report").state == "success"
    html = workspace / "lake" / "reports" / "meters" / "month=2026-04" / "meters-2026-04.html"
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    ((snapshot,),) = con.sql("SELECT snapshot_id FROM run_manifests WHERE pipeline = 'meters'").fetchall()
    assert f"publicados en la instantánea {snapshot}" in html.read_text()  # as of the snapshot this run published
    # March's files had landed too (older): read once and March recomputed in the same run
    assert con.sql("SELECT DISTINCT month FROM meter_completeness ORDER BY 1").fetchall() == [
        ("2026-03",),
        ("2026-04",),
    ]
    # the sample's 50 points and the 5 frontier points of distributors DIST01-DIST03 (the ex-post's)
    assert con.sql("SELECT count(DISTINCT point_id) FROM meter_completeness").fetchall() == [(55,)]
    assert con.sql("SELECT count(*) FROM run_manifests WHERE pipeline = 'meters'").fetchall() == [(1,)]
