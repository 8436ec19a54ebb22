"""Airflow's REST API (v2), as the cluster's orchestrator uses it: token, DAGs, runs, task instances."""

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
        health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
        return all(
            health.get(c, {}).get("status") == "healthy"
            for c in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )

    def token(self) -> str:
        if self._token is None:
            user, password = next(iter(json.loads(self.passwords.read_text()).items()))
            reply = httpx.post(f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=10)
            reply.raise_for_status()
            self._token = reply.json()["access_token"]
        return self._token

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = httpx.request(
            method,
            f"{self.url}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )
        if reply.status_code >= 400:
            raise ClusterFault(f"Airflow API {method} {path}: {reply.status_code} {reply.text[:500]}")
        return reply.json() if reply.content else None

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the DAG processor has serialized the DAG."""

        def parsed() -> bool:
            try:
                self.call("GET", f"/dags/{dag_id}/details")
                return True
            except ClusterFault:
                return False

        wait_for(f"DAG {dag_id} to be parsed", parsed, timeout, every=1)

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any], run_id: str) -> str:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 500, "order_by": "logical_date"})[
            "dag_runs"
        ]

    def wait_runs(self, dag_id: str, run_ids: set[str] | None, expected: int, timeout: float) -> list[dict]:
        """Poll until `expected` runs (those named, else all of the DAG's) exist and have ended."""

        def done() -> list[dict] | None:
            runs = [r for r in self.runs(dag_id) if run_ids is None or r["dag_run_id"] in run_ids]
            return runs if len(runs) >= expected and all(r["state"] in TERMINAL for r in runs) else None

        return wait_for(f"{expected} run(s) of {dag_id} to end", done, timeout, every=2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})[
            "task_instances"
        ]
