"""Test session set-up: one migrated Airflow home for the whole session (migrating takes seconds),
and per-test warehouse/lake locations so tests never touch data/."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its configuration at import time, so these must be set before any test imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mayorista-airflow-"))
# removed when the process that made it ends (each xdist worker makes its own); not by a forked child
# that exits normally (an Airflow task runner), which would pull it from under its parent
atexit.register(lambda pid=os.getpid(): os.getpid() == pid and shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """A migrated SQLite metadata DB, created once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return _AIRFLOW_HOME


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Warehouse and lake under tmp_path, via the same environment variables production uses."""
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / "warehouse.sqlite"))
    monkeypatch.setenv("MAYORISTA_LAKE", str(tmp_path / "lake"))
    return tmp_path


# The cases `make test` leaves to `make test-all` (CI): each runs whole pipelines several times in
# subprocesses (about 10 s of CPU each, mostly importing Great Expectations) to kill, starve or race
# them. `make test` keeps at least one case of every fault family, so a newcomer's run still checks
# that nothing is lost; `make test-all` runs every case. Marked here, in one list, rather than in each
# file, so the split is read in one place; `pytest -m slow` runs exactly these.
SLOW = (
    "tests/faults/test_kill.py::test_killed_runs_keep_previous_results_and_leave_nothing_behind[meters]",
    "tests/faults/test_kill.py::test_killed_runs_keep_previous_results_and_leave_nothing_behind[delivery]",
    "tests/faults/test_disk.py::test_full_disk_under_the_lake_or_the_catalog[catalog-2m]",
    "tests/faults/test_disk.py::test_read_only_warehouse[catalog]",
    "tests/faults/test_maintenance.py::test_a_damaged_data_file_is_named_found_by_check_and_repaired_by_a_rerun[missing]",
    "tests/faults/test_maintenance.py::test_maintenance_next_to_a_publish_about_to_commit_deletes_nothing_it_needs",
    "tests/faults/test_maintenance.py::test_check_and_maintain_leave_a_healthy_warehouse_as_it_was",
    "tests/faults/test_maintenance.py::test_a_foreign_database_is_refused_untouched[wal-sqlite]",
    "tests/faults/test_maintenance.py::test_a_foreign_database_is_refused_untouched[zero-byte]",
    "tests/faults/test_landing.py::test_two_ingests_of_different_months_at_once_both_land",
    "tests/faults/test_held.py::test_an_exclusive_lock_on_the_catalog_is_waited_for_or_reported[wait-2s]",
    "tests/metering/test_determinism.py",  # two ingests of a large month, one thread and all
    "tests/faults/test_s3.py::test_endpoint_lost_in_the_middle_of_a_publish",
    "tests/faults/test_s3.py::test_missing_bucket_for_a_new_warehouse_is_an_environment_fault",
    # more cases of a family make test already tries once (NaN, a path-like name, one malformed file
    # per pipeline, an absurd date)
    "tests/faults/test_hostile.py::test_a_price_that_is_not_a_number_is_named_with_its_line[inf]",
    "tests/faults/test_hostile.py::test_a_participant_named_like_a_path_writes_nothing_outside_the_lake[meters-A/B]",
    "tests/faults/test_hostile.py::test_a_participant_named_like_a_path_writes_nothing_outside_the_lake[delivery-../../evil]",
    "tests/faults/test_hostile.py::test_a_malformed_file_stops_the_run_with_a_message[ncc11-ncc11/nodal_prices.csv-empty]",
    "tests/faults/test_hostile.py::test_a_malformed_file_stops_the_run_with_a_message[ncc11-ncc11/nodal_prices.csv-semicolons]",
    "tests/faults/test_hostile.py::test_a_malformed_file_stops_the_run_with_a_message[ncc11-ncc11/nodal_prices.csv-ragged]",
    "tests/faults/test_hostile.py::test_a_malformed_file_stops_the_run_with_a_message[meters-smec/metering_points.csv-binary]",
    "tests/faults/test_hostile.py::test_a_malformed_file_stops_the_run_with_a_message[delivery-smec/vpn_changes.csv-empty]",
    "tests/faults/test_landing.py::test_a_row_of_year_one_is_quarantined_and_the_rest_ingested",
    # the lake on fsspec's memory:// (object storage without a server): make test tries the real S3
    # endpoint instead (tests/test_s3_lake.py), which runs the same pipelines against a bucket
    "tests/test_lake_uri.py::test_object_storage_lake",
    "tests/test_lake_uri.py::test_rerun_on_object_storage",
    # two quarters at once: make test tries the harder case, two runs of the same quarter at once
    "tests/test_warehouse.py::test_runs_of_different_quarters_at_once_both_land",
)
# of the analyst's escapes from read-only, `make test` tries these (one of each kind); CI tries all
QUICK_ESCAPES = (
    "detach-and-reattach-writable",
    "catalog-as-plain-sqlite",
    "read-a-file",
    "copy-to-a-file",
    "install-extension",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        escape = item.nodeid.startswith(
            "tests/faults/test_analyst_security.py::test_an_escape_from_read_only_is_refused["
        )
        if item.nodeid.startswith(SLOW) or (escape and item.callspec.id not in QUICK_ESCAPES):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    """A real S3 endpoint (moto's server in its own process, tests/s3server.py) for one test module."""
    from tests import s3server

    yield from s3server.s3_server_fixture(tmp_path_factory)
