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
    assert outlets == {f"mayorista://warehouse/{t}" for t in ("ncc11_energy", "ncc11_power_month", "ncc11_power")}


def test_warehouse_maintenance_dag_is_weekly_and_single(dagbag):
    dag = dagbag.dags["warehouse_maintenance"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert [t.task_id for t in dag.topological_sort()] == ["maintain"]
