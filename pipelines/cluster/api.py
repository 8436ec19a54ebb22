"""Airflow's REST API (v2): token, DAGs, runs, task instances, task logs, assets, backfills.

The one client of the project: `make cluster` drives its deployment with it, and the integration
tests (tests/integration/stack.py) drive theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from pipelines.cluster.services import ClusterFault, wait_for

TERMINAL = {"success", "failed"}


class Api:
    def __init__(self, url: str, passwords: Path):
        self.url = url
        self.passwords = passwords  # written by the API server (simple auth manager)
        self._token: str | None = None

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v2/version", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def healthy(self) -> bool:
        """Every component reports healthy. Polled while they start: an API server too busy to answer
        in time (a loaded machine) is "not yet", like one not yet listening."""
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=10).json()
        except httpx.HTTPError:
            return False
        return all(
            health.get(c, {}).get("status") == "healthy"
            for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )

    def token(self) -> str:
        if self._token is None:
            user, password = next(iter(json.loads(self.passwords.read_text()).items()))
            reply = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=30)
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request. A GET that gets no answer in time is asked again (twice at most): it changes
        nothing, and an API server on a loaded machine can be slow for a while; anything else is not
        repeated (a second POST could make a second run)."""
        attempts = 3 if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                reply = httpx.request(
                    method,
                    f"{self.url}/api/v2{path}",
                    headers={"Authorization": f"Bearer {self.token()}"},
                    timeout=30,
                    **kwargs,
                )
                break
            except httpx.TimeoutException:
                if attempt == attempts:
                    raise ClusterFault(f"Airflow API {method} {path}: no answer in 30 s, {attempts} times") from None
        if reply.status_code >= 400:
            raise ClusterFault(f"Airflow API {method} {path}: {reply.status_code} {reply.text[:500]}")
        return reply.json() if reply.content else None

    # -- DAGs -------------------------------------------------------------------------------------

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the DAG processor has serialized the DAG (on timeout: the import errors)."""

        def parsed() -> bool:
            try:
                self.call("GET", f"/dags/{dag_id}/details")
                return True
            except ClusterFault:
                return False

        wait_for(f"DAG {dag_id} to be parsed", parsed, timeout, every=1, on_timeout=self.import_errors)

    def import_errors(self) -> str:
        try:
            return json.dumps(self.call("GET", "/importErrors"), indent=1)[:4000]
        except (ClusterFault, httpx.HTTPError) as exc:  # a report for a timeout message: best effort
            return repr(exc)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # -- runs -------------------------------------------------------------------------------------

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any], run_id: str) -> str:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str, **params: Any) -> list[dict]:
        """The DAG's runs in logical-date order; `params` filter them (e.g. run_type="backfill")."""
        query = {"limit": 500, "order_by": "logical_date", **params}
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params=query)["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Poll until the run ends; return its final state (on timeout: its tasks' states and logs)."""
        return wait_for(
            f"run {dag_id}/{run_id} to finish",
            lambda: (s := self.run_state(dag_id, run_id)) in TERMINAL and s,
            timeout,
            every=1.0,  # each poll costs the API server a request; runs last tens of seconds
            on_timeout=lambda: self.task_report(dag_id, run_id),
        )

    def wait_runs(self, dag_id: str, run_ids: set[str] | None, expected: int, timeout: float) -> list[dict]:
        """Poll until `expected` runs (those named, else all of the DAG's) exist and have ended."""

        def done() -> list[dict] | None:
            runs = [r for r in self.runs(dag_id) if run_ids is None or r["dag_run_id"] in run_ids]
            return runs if len(runs) >= expected and all(r["state"] in TERMINAL for r in runs) else None

        return wait_for(f"{expected} run(s) of {dag_id} to end", done, timeout, every=2)

    def clear_failed(self, dag_id: str, run_id: str) -> None:
        """What an operator does after fixing the input: clear the failed tasks so they run again."""
        self.call(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "only_failed": True, "reset_dag_runs": True},
        )

    def backfills(self, dag_id: str) -> list[dict]:
        return self.call("GET", "/backfills", params={"dag_id": dag_id})["backfills"]

    # -- task instances ---------------------------------------------------------------------------

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})[
            "task_instances"
        ]

    def task_instances_of(self, dag_id: str, **filters: Any) -> list[dict]:
        """Task instances of all the DAG's runs, filtered (e.g. task_id="ingest", state="running")."""
        params = {"limit": 500, **filters}
        return self.call("GET", f"/dags/{dag_id}/dagRuns/~/taskInstances", params=params)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of a task instance, first to last (each with its hostname, state, dates)."""
        reply = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(reply["task_instances"], key=lambda t: t["try_number"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """State per task; a mapped task shows the most telling state of its instances."""
        rank = {"failed": 0, "up_for_retry": 1, "running": 2, "upstream_failed": 3}
        states: dict[str, str | None] = {}
        for ti in sorted(self.task_instances(dag_id, run_id), key=lambda t: rank.get(t["state"], 9), reverse=True):
            states[ti["task_id"]] = ti["state"]
        return states

    def task_report(self, dag_id: str, run_id: str) -> str:
        """Task states and the log of any failed task, for error and assertion messages."""
        states = self.task_states(dag_id, run_id)
        lines = [f"{dag_id}/{run_id}: {states}"]
        for task_id, state in states.items():
            if state in ("failed", "up_for_retry"):
                lines.append(self.task_log(dag_id, run_id, task_id)[-3000:])
        return "\n".join(lines)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        """The task's log (its latest try unless told): structured events joined as text."""
        ti = next(t for t in self.task_instances(dag_id, run_id) if t["task_id"] == task_id)
        reply = self.call(  # its map_index is not always -1 (3.3 uses 0)
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number or ti['try_number']}",
            params={"full_content": True, "map_index": ti["map_index"]},
        )
        content = reply.get("content", "")
        if isinstance(content, list):
            return "\n".join(json.dumps(e) if isinstance(e, dict) else str(e) for e in content)
        return str(content)

    # -- assets -----------------------------------------------------------------------------------

    def asset_id(self, uri: str) -> int:
        assets = self.call("GET", "/assets", params={"uri_pattern": uri, "limit": 100})["assets"]
        return next(a["id"] for a in assets if a["uri"] == uri)

    def asset_events(self, uri: str) -> list[dict]:
        return self.call("GET", "/assets/events", params={"asset_id": self.asset_id(uri), "limit": 100})["asset_events"]

    def post_asset_event(self, uri: str, extra: dict[str, Any]) -> dict:
        """What an upstream system does when it has delivered new data."""
        return self.call("POST", "/assets/events", json={"asset_id": self.asset_id(uri), "extra": extra})
