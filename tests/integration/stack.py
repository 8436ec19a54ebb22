"""A real Airflow deployment for tests: `airflow standalone` (scheduler, DAG processor, triggerer,
API server, LocalExecutor) on a free localhost port, driven through the REST API by the project's one client (`stack.api`: pipelines/cluster/api.py,
the one `make cluster` uses).

The services run in their own process group; `stop()` ends exactly that group and nothing else.
Every wait polls with a deadline: nothing sleeps for a fixed time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.cluster.api import Api
from pipelines.cluster.services import ClusterFault, free_port
from pipelines.cluster.services import wait_for as _wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


class StackError(AssertionError):
    pass


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, every: float = 0.5, on_timeout: Callable[[], str] = lambda: ""
) -> Any:
    """Poll `check` until it returns something truthy; fail the test after `timeout` seconds saying what
    (the polling is `make cluster`'s, pipelines/cluster/services.py)."""
    try:
        return _wait_for(what, check, timeout, every, on_timeout)
    except ClusterFault as exc:
        raise StackError(str(exc)) from None


def airflow_env(home: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """The environment of every Airflow process of one deployment (config by env vars only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    base = f"http://127.0.0.1:{port}"
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # standalone starts `airflow ...` by name
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",  # default 32 starts ~40 processes on a 2-core machine
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            # Catch-up DAGs would otherwise queue months of scheduled runs ahead of the test's runs;
            # manual triggers and backfills still run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # the DAG files do not change while a test runs: parsed once, not every 30 s (each parse
            # imports every DAG file again; measured: the DAG processors took 55 CPU-s of CI's deployments)
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "GX_ANALYTICS_ENABLED": "False",
        }
    )
    env.update(extra)
    return env


class AirflowStack:
    """One deployment: its AIRFLOW_HOME, metadata DB (from `extra`), port and process group."""

    def __init__(self, home: Path, extra: dict[str, str] | None = None, port: int | None = None):
        self.home = home
        self.port = port or free_port()
        self.env = airflow_env(home, self.port, extra or {})
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "standalone.log"
        self.proc: subprocess.Popen | None = None
        self.pgid: int | None = None
        # the REST client; `airflow standalone` writes the admin's password to this file
        self.api = Api(self.url, home / "simple_auth_manager_passwords.json.generated")

    # -- processes -------------------------------------------------------------------------------

    def start(self, timeout: float = 240) -> AirflowStack:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(VENV_BIN / "airflow"), "standalone"],
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.proc.pid  # a new session: its leader's pid is the group id
        wait_for("the API server", self._api_up, timeout, on_timeout=self.tail)
        wait_for("scheduler, DAG processor and triggerer heartbeats", self._healthy, timeout, on_timeout=self.tail)
        return self

    def _api_up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise StackError(f"airflow standalone exited with {self.proc.returncode}\n{self.tail()}")
        return self.api.up()

    def _healthy(self) -> bool:
        return self.api.healthy()

    def pids(self) -> set[int]:
        """Live processes of this deployment: its process group, and any process that left the group
        but still runs with this AIRFLOW_HOME (none should)."""
        if self.pgid is None:
            return set()
        marker = f"AIRFLOW_HOME={self.home}".encode() + b"\0"
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if os.getpgid(pid) == self.pgid or marker in (entry / "environ").read_bytes():
                    found.add(pid)
            except (ProcessLookupError, FileNotFoundError, PermissionError):
                pass
        return found

    def kill(self) -> None:
        """Crash: SIGKILL the whole group at once (scheduler, executor workers, running tasks)."""
        if self.proc is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
            wait_for("the killed process group to disappear", lambda: not self.pids(), 30)
            self.proc = None

    def stop(self) -> None:
        """Orderly stop of this process group only: SIGTERM, then SIGKILL whatever remains."""
        if self.proc is None:
            return
        try:
            os.killpg(self.pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            wait_for("airflow to stop", lambda: not self.pids(), 10, every=0.2)
        except StackError:
            pass
        self.kill()

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run an `airflow ...` command against this deployment's metadata DB."""
        return subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def backfill_create(self, dag_id: str, start: str, end: str, *extra: str) -> subprocess.CompletedProcess:
        """`airflow backfill create` with the CLI's defaults (up to 10 active runs). On SQLite the CLI can
        meet the scheduler's write lock ("database is locked"; the creation is rolled back): try again,
        for a bounded time."""

        def attempt() -> subprocess.CompletedProcess | None:
            done = self.cli("backfill", "create", "--dag-id", dag_id, "--from-date", start, "--to-date", end, *extra)
            return None if "database is locked" in done.stdout + done.stderr else done

        return wait_for(f"backfill create {dag_id} without a locked SQLite", attempt, 120, every=2)
