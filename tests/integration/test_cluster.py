"""`make cluster`, shortened (March 1-2): the whole cluster starts, every task lands on one of the two
Celery workers, the warehouse equals a single-machine run's, and nothing is left running.

Needs redis-server and a PostgreSQL server (MAYORISTA_TEST_POSTGRES_URL, as .ci/run sets it), and
MAYORISTA_TEST_CLUSTER=1: about 8 minutes on 2 cores, more than CI's 25-minute budget has left, so
it runs on demand (`MAYORISTA_TEST_CLUSTER=1 make test-integration`) until the scheduler tests are
cut further (issue #22)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.integration.stack import ROOT

POSTGRES_URL = os.environ.get("MAYORISTA_TEST_POSTGRES_URL", "")
LINE = re.compile(r"^task (\w+)\.(\w+) (\S+) ran on (\S+)$", re.M)

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MAYORISTA_TEST_CLUSTER") != "1", reason="on demand: MAYORISTA_TEST_CLUSTER=1 (about 8 min)"
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (apt-get install redis-server)"),
    pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL not configured: set MAYORISTA_TEST_POSTGRES_URL"),
]


def test_cluster_runs_the_periods_on_two_workers_and_matches_one_machine(tmp_path):
    env = {**os.environ, "MAYORISTA_CLUSTER_POSTGRES_URL": POSTGRES_URL}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cluster", "--days", "2", "--root", str(tmp_path / "cluster")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    lines = LINE.findall(out)
    assert {worker for *_, worker in lines} <= {"worker-a", "worker-b"}
    ran = {(dag, task, period) for dag, task, period, _ in lines}
    assert ("ncc11_quarterly", "run_quarter", "2026-05") in ran
    assert ("meter_readings", "ingest", "2026-03-02") in ran
    assert ("vpn_delivery_monthly", "review_month", "2026-03") in ran
    assert re.search(rf"^summary: {len(lines)} task instances ran, ", out, re.M)
    assert "still running: nothing" in out
    assert "SOME TABLES DIFFER" not in out and re.search(r"^comparison: \d+ of \d+ tables with equal rows", out, re.M)
