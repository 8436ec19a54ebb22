"""Fixtures that start real Airflow deployments: one per metadata database (SQLite always;
PostgreSQL when MAYORISTA_TEST_POSTGRES_URL names a server, as .ci/run does), each with its own
AIRFLOW_HOME, warehouse, lake and a copy of the sample landing data. On PostgreSQL the warehouse's
DuckLake catalog is a PostgreSQL database too (its own, not Airflow's): the production profile."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import ROOT, AirflowStack

POSTGRES_URL = os.environ.get("MAYORISTA_TEST_POSTGRES_URL", "")  # postgresql+psycopg2://user:pw@host/db


class Deployment:
    """A running stack plus where its pipelines write; `restart()` replaces the stack after a crash."""

    def __init__(
        self,
        root: Path,
        backend: str,
        db_extra: dict[str, str],
        warehouse: str | None = None,
        unpaused: tuple[str, ...] = ("ncc11_quarterly", "meter_readings", "vpn_delivery_monthly"),
    ):
        self.unpaused = unpaused
        self.root = root
        self.backend = backend
        self.landing = root / "landing"
        self.warehouse = warehouse or str(root / "warehouse.sqlite")
        self.lake = root / "lake"
        self.extra = {
            **db_extra,
            "MAYORISTA_WAREHOUSE": str(self.warehouse),
            "MAYORISTA_LAKE": str(self.lake),
            "MAYORISTA_LANDING": str(self.landing),
            # crash test: a restarted scheduler looks for tasks of the dead one every 10 s (default
            # 300 s) and declares it dead after 15 s without heartbeat (default 30 s)
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }
        self.stack = AirflowStack(root / "airflow", self.extra)

    def start(self) -> AirflowStack:
        self.stack.start()
        for dag_id in self.unpaused:
            self.stack.api.wait_dag(dag_id)
            self.stack.api.unpause(dag_id)
        return self.stack

    def restart(self) -> AirflowStack:
        self.stack = AirflowStack(self.root / "airflow", self.extra)  # same home and DB, new port
        self.stack.start()
        return self.stack


def _postgres_database(purpose: str = "it") -> Iterator[str]:
    """A fresh database on the given server for this session, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set MAYORISTA_TEST_POSTGRES_URL (CI's .ci/run does)")
    import importlib.util

    import psycopg2
    from sqlalchemy.engine import make_url

    if importlib.util.find_spec("asyncpg") is None:  # Airflow 3 opens the metadata DB through an async engine too
        pytest.fail("Airflow 3 on PostgreSQL needs the asyncpg driver next to psycopg2: `uv add asyncpg`")

    url = make_url(POSTGRES_URL)
    name = f"mayorista_{purpose}_{uuid.uuid4().hex[:8]}"
    dsn = dict(
        host=url.host or "localhost",
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
    )
    try:
        admin = psycopg2.connect(**dsn, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"MAYORISTA_TEST_POSTGRES_URL is set but the server does not answer: {exc}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# The production profile where the server is there (CI), else the embedded one. What the scheduler tests
# check (runs side by side, a failed run and its retry, backfills, a crash of every process) is the same
# code on either metadata database; CI's 25 minutes hold one deployment per module, so CI runs them on
# PostgreSQL + LocalExecutor, and a machine without PostgreSQL on SQLite. A real scheduler on SQLite
# still runs in CI: test_assets.py's deployment (the embedded profile of `make airflow`).
ONE_PROFILE = "postgres" if POSTGRES_URL else "sqlite"


@pytest.fixture(scope="module", params=[ONE_PROFILE])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(request.param, tmp_path_factory)


def deploy(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A started deployment on `backend` ("sqlite" or "postgres"), stopped (nothing left) afterwards."""
    root = tmp_path_factory.mktemp(f"airflow-{backend}")
    shutil.copytree(ROOT / "data" / "sample", root / "landing")
    warehouse = None
    if backend == "postgres":
        databases = _postgres_database()
        catalogs = _postgres_database("catalog")
        db_extra = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": next(databases), "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
        warehouse = next(catalogs).replace("postgresql+psycopg2://", "postgresql://")
    else:
        databases = catalogs = iter(())
        db_extra = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow' / 'airflow.db'}"}
    deployment = Deployment(root, backend, db_extra, warehouse)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stack.stop()
        leftover = deployment.stack.pids()
        for _ in databases:  # drops the PostgreSQL databases
            pass
        for _ in catalogs:
            pass
        assert not leftover, f"processes left behind: {leftover}"
