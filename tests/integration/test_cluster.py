"""The cluster in CI (issue #22): `make cluster`'s deployment, CI-sized, and the faults of a cluster, on
ONE started cluster shared by the cases below, which run in this order (each leaves the next its state):

1. one NCC-11 quarter and March 1-3 as an Airflow backfill of daily meter runs, at once, on two Celery
   workers; one worker is SIGKILLed (its whole session: worker, pool, task supervisor, task process)
   in the middle of a meter ingest, after it read the landed files and before it published: the
   scheduler sees the try's heartbeat stop, fails that try, and Airflow's retry runs it on the other
   worker; the killed worker is started again;
2. the broker (redis-server) restarted while runs are in flight: every run still ends in success;
3. the S3 endpoint (the lake and the landing zone) unreachable while a quarter runs: the try fails with
   one sentence naming the endpoint, no snapshot is added, and the retry publishes once it is back;
4. every task ran on one of the two workers, both used; no reading and no hourly value is there twice;
   the warehouse equals a single-machine run of the same periods (the command line, into a SQLite
   catalog, run meanwhile); nothing the cluster started is left running.

Needs redis-server, a PostgreSQL server (MAYORISTA_TEST_POSTGRES_URL, as .ci/run sets it) and
MAYORISTA_TEST_CLUSTER=1 (.ci/run sets it when it has both). `make cluster` is the demo-sized run.
The components reach the S3 endpoint (moto's server) through a relay of this test (tests/s3server.py),
which case 3 cuts: stopping moto would lose the lake (it keeps its objects in memory)."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from pipelines.cluster.__main__ import MONTH, WORKERS, Cluster, report_tasks, running, single_machine
from pipelines.cluster.compare import compare_warehouses
from pipelines.warehouse import connect
from tests import s3server
from tests.integration.stack import ROOT, wait_for

POSTGRES_URL = os.environ.get("MAYORISTA_TEST_POSTGRES_URL", "")
QUARTER, QUARTER_DATE = "2026-05", "2026-08-01T00:00:00-06:00"
DAYS = 3  # March 1-3: three daily runs, each re-ingesting March (ingests one at a time: max_active_tis_per_dag=1)
DAGS = ("ncc11_quarterly", "meter_readings")
# the waits after a fault, shortened for CI (production keeps Airflow's defaults: 300 s, 10 s, 600 s; the
# cluster's own retry delay is 30 s): a try without heartbeat for 20 s is failed, checked every 5 s;
# its retry starts 5 s later; a task queued for 2 minutes (lost by a broker) is queued again
FAST = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
    # the DAG files do not change during the test: parse them once, not every 30 s (CPU for the tasks)
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
}

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MAYORISTA_TEST_CLUSTER") != "1",
        reason="the cluster test runs when MAYORISTA_TEST_CLUSTER=1 (.ci/run sets it when redis-server and PostgreSQL are there)",
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (apt-get install redis-server)"),
    pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL not configured: set MAYORISTA_TEST_POSTGRES_URL"),
]


@dataclass
class Scenario:
    cluster: Cluster
    relay: s3server.Relay
    backfill_began: datetime
    quarter_run: str
    single: Future  # the single-machine run's warehouse
    started: float = field(default_factory=time.monotonic)
    killed: dict = field(default_factory=dict)  # what case 1 killed, for the later cases
    phases: list[str] = field(default_factory=list)

    def phase(self, what: str) -> None:
        self.phases.append(f"{what} at {time.monotonic() - self.started:.0f} s")
        print(f"cluster test: {self.phases[-1]}", flush=True)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cluster")
    shutil.copytree(ROOT / "data" / "sample", root / "landing")
    began = time.monotonic()
    s3_port = s3server.free_port()
    relay = s3server.Relay(s3_port)  # connections fail until moto listens: the cluster waits for it
    with ThreadPoolExecutor(1) as pool, running(POSTGRES_URL, root, FAST, s3_port=s3_port, s3_url=relay.url) as cluster:
        # the same periods on one machine, while the cluster starts
        single = pool.submit(single_machine, root / "single", ((QUARTER, QUARTER_DATE),), MONTH, delivery=False)
        cluster.start()
        for dag_id in DAGS:
            cluster.api.wait_dag(dag_id)
            cluster.api.unpause(dag_id)
        quarter = cluster.api.trigger("ncc11_quarterly", QUARTER_DATE, {"quarter": QUARTER}, f"ci__{QUARTER}")
        scenario = Scenario(cluster, relay, cluster.start_backfill(DAYS), quarter, single, began)
        scenario.phase("cluster up, the quarter and the backfill started")
        yield scenario
        scenario.phase("done")
    relay.cut()


def _ingest_midway(cluster: Cluster) -> tuple[str, str] | None:
    """(run id, worker) of a meter ingest that has read the landed files and not yet checked or published
    the month, if there is one. A task's log is on its worker's disk (the worker serves it to the API
    server): the ingest logs 'meters <month>: month ...' when it starts building the month from them."""
    for ti in cluster.api.task_instances_of("meter_readings", task_id="ingest", state="running"):
        worker, run_id = ti["hostname"], ti["dag_run_id"]
        log = cluster.root / worker / "logs" / "dag_id=meter_readings" / f"run_id={run_id}" / "task_id=ingest"
        attempt = log / f"attempt={ti['try_number']}.log"
        if (
            worker in WORKERS
            and attempt.exists()
            and f"meters {MONTH}: month ..." in attempt.read_text(errors="replace")
        ):
            return run_id, worker
    return None


def _wait_all_ended(scenario: Scenario) -> None:
    cluster = scenario.cluster
    if "victim" in scenario.killed:
        cluster.wait_worker(scenario.killed["victim"])  # back, for the cases after
    cluster.wait_backfill(DAYS, scenario.backfill_began, timeout=600)
    cluster.api.wait_runs("ncc11_quarterly", {scenario.quarter_run}, 1, 300)
    if "every run ended" not in " ".join(scenario.phases):
        scenario.phase("every run ended")


def test_a_worker_killed_mid_ingest_is_retried_on_the_other_worker(scenario: Scenario):
    cluster, api = scenario.cluster, scenario.cluster.api
    run_id, victim = wait_for("a meter ingest midway", lambda: _ingest_midway(cluster), 300, every=0.3)
    cluster.services[victim].kill()  # the host dies: worker, its pool, the task's supervisor and process
    other = next(w for w in WORKERS if w != victim)
    scenario.killed = {"run_id": run_id, "victim": victim, "other": other}
    scenario.phase(f"killed {victim} in the middle of {run_id}'s ingest")

    def retried() -> list[dict] | None:
        tries = api.tries("meter_readings", run_id, "ingest")
        return tries if len(tries) >= 2 and tries[-1]["state"] in ("running", "success") else None

    tries = wait_for("the killed ingest to be retried", retried, 240, every=1)
    scenario.phase(f"the ingest's try {tries[-1]['try_number']} runs on {tries[-1]['hostname']}")
    cluster.start_worker(victim, wait=False)  # the host is back; it takes tasks again once ready
    assert [t["hostname"] for t in tries] == [victim, other], tries
    assert tries[0]["state"] == "failed", tries  # the killed try, failed for its heartbeat, not lost


def test_the_broker_restarted_mid_run_loses_nothing(scenario: Scenario):
    cluster, api = scenario.cluster, scenario.cluster.api

    def in_flight() -> list[tuple[str, str, str]]:
        tis = api.task_instances_of("meter_readings", state=["scheduled", "queued", "running"])
        return sorted((ti["dag_run_id"], ti["task_id"], ti["state"]) for ti in tis)

    flying = wait_for("meter tasks in flight", in_flight, 60, every=0.5)
    cluster.restart_broker()
    scenario.phase(f"restarted the broker with {len(flying)} meter tasks in flight: {flying}")
    _wait_all_ended(scenario)
    runs = api.runs("meter_readings", run_type="backfill") + api.runs("ncc11_quarterly")
    bad = "\n".join(api.task_report(r["dag_id"], r["dag_run_id"]) for r in runs if r["state"] != "success")
    assert len(runs) == DAYS + 1 and not bad, bad
    for run_id, task_id, _ in flying:  # what was in flight at the restart ended in success, or was skipped
        tis = {t["task_id"]: t["state"] for t in api.task_instances("meter_readings", run_id)}
        assert tis[task_id] in ("success", "skipped"), (run_id, task_id, tis)


def _snapshots(catalog: str) -> int:
    """The DuckLake catalog's latest snapshot id, read from PostgreSQL itself (the lake may be unreachable)."""
    import psycopg2

    con = psycopg2.connect(catalog, connect_timeout=10)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT max(snapshot_id) FROM ducklake_snapshot")
            return cur.fetchone()[0]
    finally:
        con.close()


def test_the_s3_endpoint_unreachable_for_a_while_fails_a_try_clearly_and_the_retry_publishes(scenario: Scenario):
    cluster, api = scenario.cluster, scenario.cluster.api
    _wait_all_ended(scenario)
    before = _snapshots(cluster.catalog)
    scenario.relay.cut()  # the network to the endpoint is down: every connection refused
    scenario.phase("cut the network to the S3 endpoint")
    run_id = api.trigger("ncc11_quarterly", "2026-08-01T00:05:00-06:00", {"quarter": QUARTER}, f"ci__{QUARTER}__s3")
    try:
        wait_for(
            "the quarter's try to fail",
            lambda: api.task_states("ncc11_quarterly", run_id).get("run_quarter") in ("up_for_retry", "failed"),
            300,
            every=0.5,
        )
    finally:
        scenario.relay.restore()  # back before the retry (5 s later)
    scenario.phase("the try failed; the endpoint is back")
    # the failed try's log, on its worker's disk (the API server would fetch it from the worker by a
    # host name that only a real network resolves)
    worker = next(t for t in api.task_instances("ncc11_quarterly", run_id) if t["task_id"] == "run_quarter")["hostname"]
    task_logs = cluster.root / worker / "logs" / "dag_id=ncc11_quarterly" / f"run_id={run_id}" / "task_id=run_quarter"
    log = "".join(p.read_text(errors="replace") for p in task_logs.rglob("attempt=1.log"))
    assert "on the S3 endpoint" in log and "unreachable" in log, log[-3000:]
    assert _snapshots(cluster.catalog) == before, "a run that could not reach its lake added a snapshot"
    assert api.wait_run("ncc11_quarterly", run_id, timeout=300) == "success", api.task_report("ncc11_quarterly", run_id)
    ti = next(t for t in api.task_instances("ncc11_quarterly", run_id) if t["task_id"] == "run_quarter")
    assert ti["try_number"] == 2, ti  # the retry published
    assert _snapshots(cluster.catalog) > before
    scenario.phase("the retry published the quarter")


def test_the_cluster_equals_one_machine_with_no_reading_twice(scenario: Scenario):
    cluster = scenario.cluster
    _wait_all_ended(scenario)  # done already after the cases above; this one may also run alone (-k)
    on, skipped, failures = report_tasks(cluster.api, DAGS)
    assert not failures, failures
    again = [
        f"{ti['task_id']} {ti['dag_run_id']} (try {ti['try_number']})"
        for dag_id in DAGS
        for ti in cluster.api.task_instances_of(dag_id)
        if ti["try_number"] > 1
    ]
    scenario.phase(f"{sum(on.values())} task instances ran ({dict(on)}); ran more than once: {again}")
    assert set(on) == set(WORKERS), on  # both workers ran tasks
    assert skipped == DAYS  # no March 1-3 run closes the month: its announcement is short-circuited

    con = connect(cluster.catalog, read_only=True, lake_root=cluster.lake)
    try:
        counts = {
            table: con.sql(f"SELECT count(*), count(DISTINCT ({key})) FROM {table}").fetchone()
            for table, key in (
                ("meter_readings", "point_id, channel, interval_end"),
                ("meter_hourly", "point_id, hour, channel"),
            )
        }
    finally:
        con.close()
    assert all(rows == distinct and rows > 0 for rows, distinct in counts.values()), counts

    left = cluster.stop(keep=("s3",))  # the lake is on the S3 endpoint: it stays for the comparison
    assert not left, f"still running: {left}"
    single = scenario.single.result(timeout=600)
    result = compare_warehouses(cluster.catalog, single, cluster.lake, cluster.landing_prefixes)
    assert result.equal, "\n".join(result.lines)
    assert any(line.startswith("compare meter_readings:") and "equal rows" in line for line in result.lines)
    scenario.phase("compared with one machine")
    left = cluster.stop()
    assert not left, f"still running: {left}"
