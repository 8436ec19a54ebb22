"""A real Airflow deployment for tests: `airflow standalone` (scheduler, DAG processor, triggerer,
API server, LocalExecutor) on a free localhost port, driven through the REST API.

The services run in their own process group; `stop()` ends exactly that group and nothing else.
Every wait polls with a deadline: nothing sleeps for a fixed time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pipelines.cluster.services import ClusterFault, free_port
from pipelines.cluster.services import wait_for as _wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TERMINAL = {"success", "failed"}


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
        self._token: str | None = None

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
        try:
            return httpx.get(f"{self.url}/api/v2/version", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _healthy(self) -> bool:
        health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        return all(
            health.get(c, {}).get("status") == "healthy"
            for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )

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
            self._token = None

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

    # -- REST API --------------------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
            user, password = next(iter(passwords.items()))
            reply = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=10)
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )
        if reply.status_code >= 400:
            raise StackError(f"{method} {path}: {reply.status_code} {reply.text}")
        return reply.json() if reply.content else None

    def wait_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the DAG processor has serialized the DAG, then unpause it."""

        def parsed() -> bool:
            try:
                self.api("GET", f"/dags/{dag_id}/details")
                return True
            except StackError:
                return False

        wait_for(f"DAG {dag_id} to be parsed", parsed, timeout, on_timeout=self._import_errors)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def _import_errors(self) -> str:
        try:
            return json.dumps(self.api("GET", "/importErrors"), indent=1)[:4000]
        except Exception as exc:  # the report is best effort; the timeout is the failure
            return repr(exc)

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: str, run_id: str) -> str:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Poll until the run ends; return its final state."""
        return wait_for(
            f"run {dag_id}/{run_id} to finish",
            lambda: (s := self.run_state(dag_id, run_id)) in TERMINAL and s,
            timeout,
            on_timeout=lambda: self.task_report(dag_id, run_id),
        )

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """State per task; a mapped task shows the most telling state of its instances."""
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        rank = {"failed": 0, "up_for_retry": 1, "running": 2, "upstream_failed": 3}
        states: dict[str, str | None] = {}
        for ti in sorted(tis, key=lambda t: rank.get(t["state"], 9), reverse=True):
            states[ti["task_id"]] = ti["state"]
        return states

    def task_report(self, dag_id: str, run_id: str) -> str:
        """Task states and the log of any failed task, for assertion messages."""
        lines = [f"{dag_id}/{run_id}: {self.task_states(dag_id, run_id)}"]
        for task_id, state in self.task_states(dag_id, run_id).items():
            if state in ("failed", "up_for_retry"):
                lines.append(self.task_log(dag_id, run_id, task_id)[-3000:])
        return "\n".join(lines)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        """The task's log (its latest try unless told): structured events joined as text."""
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        ti = next(t for t in tis if t["task_id"] == task_id)  # its map_index is not always -1 (3.3 uses 0)
        reply = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number or ti['try_number']}",
            params={"full_content": True, "map_index": ti["map_index"]},
        )
        content = reply.get("content", "")
        if isinstance(content, list):
            return "\n".join(json.dumps(e) if isinstance(e, dict) else str(e) for e in content)
        return str(content)

    def clear_failed(self, dag_id: str, run_id: str) -> None:
        """What an operator does after fixing the input: clear the failed tasks so they run again."""
        self.api(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True},
        )

    def asset_id(self, uri: str) -> int:
        assets = self.api("GET", "/assets", params={"uri_pattern": uri, "limit": 100})["assets"]
        return next(a["id"] for a in assets if a["uri"] == uri)

    def asset_events(self, uri: str) -> list[dict]:
        return self.api("GET", "/assets/events", params={"asset_id": self.asset_id(uri), "limit": 100})["asset_events"]

    def post_asset_event(self, uri: str, extra: dict[str, Any]) -> dict:
        """What an upstream system does when it has delivered new data."""
        return self.api("POST", "/assets/events", json={"asset_id": self.asset_id(uri), "extra": extra})
