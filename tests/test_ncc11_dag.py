"""The ncc11_quarterly DAG runs end to end on the bundled sample quarter (dag.test(), real Airflow)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pendulum

from tests.conftest import ROOT

GT = pendulum.timezone("America/Guatemala")


def test_dag_run_publishes_the_sample_quarter(airflow_home, workspace, monkeypatch):
    from airflow.models import DagBag

    monkeypatch.setenv("MAYORISTA_LANDING", str(ROOT / "data" / "sample"))
    dag = DagBag(dag_folder=str(ROOT / "dags" / "ncc11_quarterly.py")).dags["ncc11_quarterly"]
    # no params: a manual run at 2026-08-01 covers the interval [2026-05-01, 2026-08-01), i.e. quarter
    # 2026-05, and reads <landing>/ncc11/2026-05
    run = dag.test(logical_date=datetime(2026, 8, 1, tzinfo=GT))
    assert run.state == "success"
    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    counts = dict(con.sql("SELECT 'energy', count(*) FROM ncc11_energy UNION ALL SELECT 'power', count(*) FROM ncc11_power").fetchall())
    assert counts == {"energy": 4 * 3, "power": 4}
    assert con.sql("SELECT DISTINCT quarter FROM ncc11_power_month").fetchall() == [("2026-05",)]
    assert not list((workspace / "lake" / "_staging").rglob("*.parquet"))  # staging cleaned up
    assert (workspace / "lake" / "ncc11_energy" / "quarter=2026-05" / "data.parquet").exists()
