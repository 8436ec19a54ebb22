"""The vpn_delivery_monthly DAG: it parses, its schedule covers the previous month, and one real run."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

from pipelines import warehouse
from pipelines.delivery import sample
from pipelines.periods import resolve_period
from tests.conftest import ROOT
from tests.delivery.fixtures import write_registry as registry_with

GUATEMALA = pendulum.timezone("America/Guatemala")


def write_registry(directory: Path) -> None:
    """Five participants, three consumption points each; DELTA also has a generation point."""
    points = [(f"PM-{p}-{i}", p, "consumption") for p in ("ALFA", "BETA", "GAMMA", "DELTA", "EPS") for i in range(3)]
    points.append(("PM-DELTA-G", "DELTA", "generation"))
    directory.mkdir(parents=True)
    registry_with(directory, [(p, who, kind, "2025-01-01", "") for p, who, kind in points])


def load_dag():
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "vpn_delivery_monthly.py"))
    assert bag.import_errors == {}
    return bag.dags["vpn_delivery_monthly"]


def test_dag_shape_and_schedule() -> None:
    dag = load_dag()
    assert dag.max_active_runs == 1 and dag.catchup is True
    assert [t.task_id for t in dag.topological_sort()] == ["months", "review_month"]
    assert dag.timetable.asset_condition.uri == "mayorista://smec/meter_month_closed"  # meter_readings closes a month
    outlets = {a.uri for a in dag.get_task("review_month").outlets}
    assert "mayorista://warehouse/delivery_compliance" in outlets
    # the run made on 1 May 06:00 covers April: its data interval is [1 Apr 06:00, 1 May 06:00) local
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dag.timetable)  # the scheduler's view of the SDK timetable
    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2026, 5, 1, 6, tz=GUATEMALA))
    assert resolve_period(None, interval.start) == "2026-04"


def test_dag_test_reviews_the_month(
    airflow_home: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    write_registry(landing / "smec")
    sample.generate(landing / "smec")
    monkeypatch.setenv("MAYORISTA_LANDING", str(landing))

    run = load_dag().test(logical_date=pendulum.datetime(2026, 5, 1, 6, tz=GUATEMALA), run_conf={"month": "2026-04"})
    assert str(run.state).endswith("success")
    db = workspace / "warehouse.sqlite"
    rows = warehouse.query(
        "SELECT change_id, compliant FROM delivery_compliance WHERE month = '2026-04' ORDER BY 1", db
    )
    assert rows.rows() == [("CHG-2604-01", True), ("CHG-2604-02", False), ("CHG-2604-03", True), ("CHG-2604-04", False)]
    assert (workspace / "lake" / "reports" / "delivery" / "month=2026-04" / "ALFA.html").exists()
