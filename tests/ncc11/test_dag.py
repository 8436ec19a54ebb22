"""The ncc11_quarterly DAG runs end to end on the bundled sample quarter (dag.test(), real Airflow)."""

from __future__ import annotations

from datetime import datetime

import pendulum

from pipelines import warehouse
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
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    counts = dict(
        con.sql(
            "SELECT 'energy', count(*) FROM ncc11_energy UNION ALL SELECT 'power', count(*) FROM ncc11_power"
        ).fetchall()
    )
    assert counts == {"energy": 4 * 3, "power": 4}
    assert con.sql("SELECT DISTINCT quarter FROM ncc11_power_month").fetchall() == [("2026-05",)]
    # the mapped run_quarter task published through the one run skeleton, with Airflow's run id
    runs = con.sql("SELECT run_id, status, snapshot_id FROM run_manifests WHERE pipeline = 'ncc11'").fetchall()
    assert len(runs) == 1 and runs[0][1] == "published" and runs[0][2] is not None
    assert "2026-05" in runs[0][0]
    con.close()
    assert list((workspace / "lake" / "main" / "ncc11_energy" / "quarter=2026-05").glob("ducklake-*.parquet"))
