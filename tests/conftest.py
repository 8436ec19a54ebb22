"""Test session set-up: one migrated Airflow home for the whole session (migrating takes seconds),
and per-test warehouse/lake locations so tests never touch data/."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Airflow reads its configuration at import time, so these must be set before any test imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mayorista-airflow-"))
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
