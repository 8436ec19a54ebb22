"""Run ids for runs started by Airflow (plain values from the task context; no Airflow import here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def airflow_run_id(context: Mapping[str, Any], period: str) -> str:
    """Airflow's run id with the period (one DAG run may cover several), and the attempt when a task
    is retried, so that every run of the warehouse's `run_manifests` has its own id."""
    ti = context.get("ti") or context.get("task_instance")
    attempt = getattr(ti, "try_number", 1) or 1
    return f"{context['run_id']}-{period}" + (f"-try{attempt}" if attempt > 1 else "")
