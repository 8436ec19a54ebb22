"""Every file in dags/ imports cleanly and defines the DAGs the contracts name."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.models import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.mark.parametrize("path", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_file_imports_without_errors(dagbag, path):
    errors = {Path(k).name: v for k, v in dagbag.import_errors.items()}
    assert path not in errors, errors.get(path)


def test_ncc11_dag_is_thin_and_single_writer(dagbag):
    dag = dagbag.dags["ncc11_quarterly"]
    # one mapped task per quarter running pipelines.ncc11.job.run (the CLI's code path), one at a time
    assert [t.task_id for t in dag.topological_sort()] == ["quarters", "run_quarter"]
    run_quarter = dag.get_task("run_quarter")
    assert run_quarter.max_active_tis_per_dag == 1
    outlets = {a.uri for a in run_quarter.outlets}
    assert outlets == {
        f"mayorista://warehouse/{t}"
        for t in ("ncc11_energy", "ncc11_energy_month", "ncc11_power_month", "ncc11_power", "ncc11_total_cost")
    }


def test_every_published_table_is_an_outlet_of_its_dag(dagbag):
    from pipelines import assets
    from pipelines.delivery.job import SCHEMAS
    from pipelines.metering.job import WAREHOUSE_TABLES
    from pipelines.ncc11.expost import TABLE as EXPOST
    from pipelines.ncc11.job import OUTPUT_TABLES, TOTAL_COST

    published = {*OUTPUT_TABLES, TOTAL_COST, EXPOST, *WAREHOUSE_TABLES, *SCHEMAS}
    assert published == {t.name for t in assets.TABLES}
    declared = {a.uri for dag in dagbag.dags.values() for task in dag.tasks for a in task.outlets}
    assert {t.uri for t in assets.TABLES} <= declared
    assert all(dag.doc_md for dag in dagbag.dags.values())


def test_warehouse_maintenance_dag_is_weekly_and_single(dagbag):
    dag = dagbag.dags["warehouse_maintenance"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert [t.task_id for t in dag.topological_sort()] == ["maintain"]
