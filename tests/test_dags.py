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
    assert dag.max_active_runs == 1
    assert [t.task_id for t in dag.topological_sort()] == ["quarters", "ingest", "transform", "publish"]
    outlets = {a.uri for a in dag.get_task("publish").outlets}
    assert outlets == {f"mayorista://warehouse/{t}" for t in ("ncc11_energy", "ncc11_power_month", "ncc11_power")}
