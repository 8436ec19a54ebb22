"""`python -m pipelines.cluster`: start the cluster, run the demo's periods through it, print where each
task instance ran, compare the warehouse with a single-machine run, and stop everything it started.

Run by `make cluster` through `.ci/cluster`, which starts PostgreSQL and sets MAYORISTA_CLUSTER_POSTGRES_URL
(a role that may create databases). Exit status: 0 all ran and the warehouses are equal, 1 a run failed
or rows differ, 2 the machine could not run the cluster. `Cluster` and `running` are also what
tests/integration/test_cluster.py starts (CI-sized, with a worker killed and the broker restarted)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3

from pipelines import config
from pipelines.cluster.api import Api
from pipelines.cluster.compare import compare_warehouses
from pipelines.cluster.services import ClusterFault, Service, free_port, wait_for
from pipelines.errors import MayoristaError

log = logging.getLogger(__name__)

VENV_BIN = Path(sys.executable).parent
GT = ZoneInfo("America/Guatemala")
WORKERS = ("worker-a", "worker-b")
BUCKET = "mayorista-lake"
# the demo's periods, shortened: two NCC-11 quarters (logical date: the next tariff quarter, as scheduled),
# March 2026 as daily meter runs (a backfill), March's delivery check
QUARTERS = (("2026-02", "2026-05-01T00:00:00-06:00"), ("2026-05", "2026-08-01T00:00:00-06:00"))
MONTH = "2026-03"
DAYS = 31  # March 2026, one daily run per day; each run's data interval starts at 01:00 local, 07:00 UTC
DELIVERY_DATE = "2026-04-01T06:00:00-06:00"


def _databases(server: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the PostgreSQL server (Airflow's metadata, the DuckLake catalog), dropped after."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(server)
    tag = uuid.uuid4().hex[:8]
    names = (f"mayorista_cluster_meta_{tag}", f"mayorista_cluster_catalog_{tag}")
    dsn = dict(host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname=url.database)
    try:
        admin = psycopg2.connect(**dsn, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise ClusterFault(f"PostgreSQL at {url.host}:{url.port} does not answer ({exc}); .ci/cluster starts it")
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'CREATE DATABASE "{name}"')  # names made here from a hex tag, no outside text
        meta = url.set(database=names[0]).render_as_string(hide_password=False)
        catalog = url.set(drivername="postgresql", database=names[1]).render_as_string(hide_password=False)
        yield meta, catalog
    finally:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class Cluster:
    """Where everything lives (one folder per "host" under `root`) and the processes started."""

    def __init__(
        self,
        root: Path,
        meta_url: str,
        catalog_url: str,
        overrides: dict[str, str] | None = None,
        *,
        s3_port: int | None = None,
        s3_url: str | None = None,
    ):
        """`overrides`: Airflow settings for every component on top of the common ones (the CI-sized
        test shortens the waits after a fault: tests/integration/test_cluster.py). `s3_port`: where the
        S3 endpoint listens; `s3_url`: where the components reach it (the test puts a relay it can cut
        between them)."""
        self.root = root
        # no worker shares a disk with another: the lake and the landing zone are on the S3 endpoint.
        # `landed` is the sample as it lands (the single-machine run reads it there), uploaded at start.
        self.landed = root / "landing"
        self.landing = f"s3://{BUCKET}/landing"
        self.lake = f"s3://{BUCKET}/lake"
        self.catalog = catalog_url
        self.redis_port, self.api_port = free_port(), free_port()
        self.s3_port = s3_port or free_port()
        self.s3_url = s3_url or f"http://127.0.0.1:{self.s3_port}"
        self.api = Api(f"http://127.0.0.1:{self.api_port}", root / "api-server" / "passwords.json")
        self.services: dict[str, Service] = {}
        base = f"http://127.0.0.1:{self.api_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MAYORISTA_"))}
        # what every Airflow component gets, on every host (configuration by environment only)
        self.common = {
            **env,
            "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + meta_url,  # postgresql+psycopg2: SQLAlchemy would pick psycopg 3
            "AIRFLOW__CORE__DAGS_FOLDER": str(config.ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            # the workers' task processes authenticate to the API server with tokens it signs: one secret
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.api.passwords),
            # no cron runs: only the runs this script asks for (manual, backfill, asset-triggered)
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # the DAG files do not change while the cluster runs: parsed once, not every 30 s
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pipelines.cluster.hostname.worker_name",
            # a worker lost mid-task (its host died) or a task not handed to a broker that was down
            # fails that try; every task replaces what it publishes, so a second try on another worker
            # is safe. The DAGs set no retries: a single machine's bad input fails at once.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "30",
            "GX_ANALYTICS_ENABLED": "False",
            "MAYORISTA_WAREHOUSE": catalog_url,
            "MAYORISTA_LAKE": self.lake,
            "MAYORISTA_LANDING": self.landing,
            **self.s3_env,
            **(overrides or {}),
        }

    @property
    def landing_prefixes(self) -> tuple[str, str]:
        """Where landed_files' paths start: the cluster's landing zone, the single-machine run's folder."""
        return f"{self.landing}/", f"{self.landed}/"

    @property
    def s3_env(self) -> dict[str, str]:
        """The S3 endpoint and its keys, by the standard AWS names (pipelines/objectstore.py reads them)."""
        return {
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": "mayorista",
            "AWS_SECRET_ACCESS_KEY": "mayorista-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    # -- components -------------------------------------------------------------------------------

    def _airflow(self, name: str, *args: str, **extra: str) -> Service:
        home = self.root / name
        env = {**self.common, "AIRFLOW_HOME": str(home), **extra}
        return Service(name, [str(VENV_BIN / "airflow"), *args], env, home)

    def _start(self, service: Service) -> Service:
        self.services[service.name] = service.start()
        return service

    def start_broker(self) -> None:
        """Redis, its append-only file in its folder: a restarted broker still holds the queued tasks."""
        argv = [which("redis-server"), "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", ""]
        self._start(Service("redis", [*argv, "--appendonly", "yes"], dict(os.environ), self.root / "redis"))

    def restart_broker(self) -> None:
        """Stop Redis (SIGTERM: it flushes its append-only file) and start it again on the same port."""
        self.services["redis"].stop()
        self.start_broker()
        wait_for("Redis to answer again", lambda: self._answers("redis", self.redis_port), 30)

    def start(self, workers: tuple[str, ...] = WORKERS) -> None:
        """Every component, overlapping what can overlap (start-up is most of a short run's wall time):
        Redis and S3 start while the metadata DB is migrated, the workers while the API server and the
        scheduler come up."""
        self.launch_infrastructure()
        self.migrate()
        self.wait_infrastructure()
        self.launch_airflow()
        for name in workers:
            self.start_worker(name, wait=False)
        self.wait_airflow()
        for name in workers:
            self.wait_worker(name)

    def launch_infrastructure(self) -> None:
        self.start_broker()
        self._start(
            Service(
                "s3",
                [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)],
                dict(os.environ),
                self.root / "s3",
            )
        )

    def wait_infrastructure(self) -> None:
        wait_for("Redis", lambda: self._answers("redis", self.redis_port), 30)
        wait_for("the S3 endpoint", lambda: self._answers("s3", self.s3_port), 60)
        s3 = boto3.client(
            "s3",
            endpoint_url=self.common["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.common["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.common["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=BUCKET)
        log.info("bucket s3://%s on %s", BUCKET, self.common["AWS_ENDPOINT_URL"])
        landed = sorted(p for p in self.landed.rglob("*") if p.is_file()) if self.landed.is_dir() else []
        for path in landed:  # what the participants and the programming land, where every worker reads it
            s3.upload_file(str(path), BUCKET, "landing/" + path.relative_to(self.landed).as_posix())
        log.info("landed %d file(s) at %s", len(landed), self.landing)

    def _answers(self, name: str, port: int) -> bool:
        self.services[name].check_alive()
        import socket

        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def migrate(self) -> None:
        migrate = self._airflow("migrate", "db", "migrate")
        migrate.home.mkdir(parents=True, exist_ok=True)
        with open(migrate.log, "wb") as out:
            done = subprocess.run(migrate.argv, env=migrate.env, cwd=migrate.home, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode:
            raise ClusterFault(f"airflow db migrate failed; its log {migrate.log}:\n{migrate.tail()}")

    def launch_airflow(self) -> None:
        for name, args in (
            ("api-server", ("api-server",)),
            ("scheduler", ("scheduler",)),
            ("dag-processor", ("dag-processor",)),
            ("triggerer", ("triggerer",)),
        ):
            self._start(self._airflow(name, *args))

    def wait_airflow(self) -> None:
        api = self.services["api-server"]
        wait_for("the API server", lambda: api.check_alive() or self.api.up(), 240, 1, api.tail)
        wait_for("scheduler, DAG processor and triggerer heartbeats", self._healthy, 240, 1)

    def _healthy(self) -> bool:
        for name in ("scheduler", "dag-processor", "triggerer"):
            self.services[name].check_alive()
        return self.api.healthy()

    def start_worker(self, name: str, wait: bool = True) -> Service:
        """Start a Celery worker; unless told not to, wait until it takes tasks (`wait_worker`)."""
        home = self.root / name
        worker = self._airflow(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@cluster",
            "--concurrency",
            "2",
            MAYORISTA_WORKER_NAME=name,
            MAYORISTA_SCRATCH=str(home / "scratch"),
            # each worker serves its own task logs; two on one machine need two ports
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
        )
        (home / "scratch").mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        if worker.log.exists():  # a restarted worker: its "ready" must be this start's; the old log kept
            worker.log.rename(worker.log.with_suffix(f".{int(time.time())}.log"))
        self._start(worker)
        return self.wait_worker(name) if wait else worker

    def wait_worker(self, name: str) -> Service:
        worker = self.services[name]
        wait_for(
            f"Celery worker {name}",
            lambda: worker.check_alive() or " ready." in worker.tail(20000),
            180,
            1,
            worker.tail,
        )
        return worker

    def stop(self, keep: tuple[str, ...] = ()) -> list[str]:
        """Stop every process started but those named in `keep`, by process id: the workers first (their
        running tasks still report to the API server), then the rest, each group side by side. Returns what
        is still running besides `keep` (nothing). The comparison with one machine keeps the S3 endpoint:
        the lake is there."""
        stopping = {name: s for name, s in self.services.items() if name not in keep}
        workers = [s for name, s in stopping.items() if name in WORKERS]
        rest = [s for name, s in stopping.items() if name not in WORKERS]
        for group in (workers, rest):
            for service in group:
                service.terminate()
            for service in group:
                service.stop()
        return [f"{s.name} {sorted(s.session_pids())}" for s in stopping.values() if s.alive() or s.session_pids()]

    # -- runs -------------------------------------------------------------------------------------

    def backfill(self, days: int, reprocess: bool) -> float:
        """The month of daily meter runs as an Airflow backfill; its wall time in seconds, from the
        command to the last run's end."""
        start = time.monotonic()
        began = self.start_backfill(days, reprocess)
        self.wait_backfill(days, began)
        return time.monotonic() - start

    def start_backfill(self, days: int, reprocess: bool = False) -> datetime:
        """A backfill of March 1 to `days` (UTC dates, as `airflow backfill create --from-date 2026-03-01
        --to-date 2026-03-DDT12:00:00` takes them), created through the REST API (`POST /backfills`): the
        same backfill as the CLI's, without starting an `airflow` process for it. Returns when."""
        began = datetime.now(UTC)
        body = {
            "dag_id": "meter_readings",
            "from_date": f"{MONTH}-01T00:00:00Z",
            "to_date": f"{MONTH}-{days:02d}T12:00:00Z",
            "reprocess_behavior": "completed" if reprocess else "none",
            "max_active_runs": 10,  # the CLI's default
        }
        self.api.call("POST", "/backfills", json=body)
        return began

    def wait_backfill(self, days: int, began: datetime, timeout: float = 3600) -> None:
        """Until the backfill's `days` runs have ended and the scheduler has marked it completed."""

        def finished() -> bool:
            runs = [r for r in self.api.runs("meter_readings") if r["run_type"] == "backfill"]
            fresh = [r for r in runs if r["start_date"] and datetime.fromisoformat(r["start_date"]) >= began]
            return len(fresh) >= days and all(r["state"] in ("success", "failed") for r in fresh)

        wait_for(f"the backfill of {days} days of meter_readings", finished, timeout, 3)
        # the scheduler marks the backfill completed a little after its last run; until then another
        # `backfill create` for the DAG is refused ("There can be only one running backfill per Dag")
        wait_for(
            "the backfill to be marked completed",
            lambda: all(b["completed_at"] for b in self.api.backfills("meter_readings")),
            300,
            2,
        )


def which(program: str) -> str:
    found = shutil.which(program) or (f"/usr/bin/{program}" if Path(f"/usr/bin/{program}").exists() else None)
    if not found:
        raise ClusterFault(f"no {program} on this machine: install it (Debian/Ubuntu: apt-get install redis-server)")
    return found


def _period(dag_id: str, run: dict) -> str:
    conf = run.get("conf") or {}
    if conf.get("quarter") or conf.get("month"):
        return conf.get("quarter") or conf["month"]
    if dag_id == "meter_readings":  # a daily run: its data interval starts at 01:00 local on the day
        return datetime.fromisoformat(run["data_interval_start"]).astimezone(GT).date().isoformat()
    return run["logical_date"] or run["dag_run_id"]


def report_tasks(api: Api, dag_ids: tuple[str, ...]) -> tuple[Counter, int, list[str]]:
    """Print one line per task instance that ran; return runs per worker, skipped count, failures."""
    on: Counter = Counter()
    skipped = 0
    failures: list[str] = []
    for dag_id in dag_ids:
        for run in api.runs(dag_id):
            period = _period(dag_id, run)
            if run["state"] != "success":
                failures.append(f"run {dag_id}/{run['dag_run_id']} ({period}): {run['state']}")
            for ti in sorted(api.task_instances(dag_id, run["dag_run_id"]), key=lambda t: t["start_date"] or ""):
                if not ti["hostname"]:
                    skipped += 1
                    continue
                print(f"task {dag_id}.{ti['task_id']} {period} ran on {ti['hostname']}", flush=True)
                on[ti["hostname"]] += 1
                if ti["state"] != "success":
                    failures.append(f"task {dag_id}.{ti['task_id']} {period} on {ti['hostname']}: {ti['state']}")
    return on, skipped, failures


def single_machine(
    root: Path, quarters: tuple[tuple[str, str], ...] = QUARTERS, month: str = MONTH, delivery: bool = True
) -> str:
    """The same periods on one machine, by the command line, into a SQLite catalog of its own."""
    warehouse, lake, landing = root / "warehouse.sqlite", root / "lake", root.parent / "landing"
    mayorista = str(VENV_BIN / "mayorista")
    steps = [
        *([mayorista, "ncc11", "--quarter", q, "--input", str(landing / "ncc11" / q)] for q, _ in quarters),
        [mayorista, "meters", "ingest", "--month", month, "--input", str(landing / "smec")],
        *([[mayorista, "delivery", "check", "--month", month, "--input", str(landing / "smec")]] if delivery else []),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAYORISTA_")}
    env.update(MAYORISTA_LANDING=str(landing), MAYORISTA_SCRATCH=str(root / "scratch"))
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "single.log", "w") as out:
        for argv in steps:
            done = subprocess.run(
                [*argv, "--warehouse", str(warehouse), "--lake", str(lake)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            if done.returncode:
                raise ClusterFault(f"single-machine run failed: {' '.join(argv[1:])}; see {root / 'single.log'}")
    return str(warehouse)


@contextmanager
def running(server: str, root: Path, overrides: dict[str, str] | None = None, **where: Any) -> Iterator[Cluster]:
    """A cluster on two fresh PostgreSQL databases; at the end every process stopped, the databases dropped.
    Meanwhile this process, the operator's host, reads the cluster's warehouse through the same endpoint
    and keys (`where`: Cluster's s3_port and s3_url)."""
    databases = _databases(server)
    meta, catalog = next(databases)
    cluster = Cluster(root, meta, catalog, overrides, **where)
    before = {name: os.environ.get(name) for name in cluster.s3_env}
    os.environ.update(cluster.s3_env)
    try:
        yield cluster
    finally:
        for name, value in before.items():  # the endpoint is gone: this process forgets it
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        left = cluster.stop()
        print(
            f"stopped: {', '.join(f'{s.name} (pid {s.pid})' for s in cluster.services.values())}; still running: {left or 'nothing'}"
        )
        databases.close()  # drops the two databases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.cluster", description=__doc__)
    parser.add_argument("--root", type=Path, default=config.ROOT / ".cluster", help="working folders (emptied first)")
    parser.add_argument(
        "--one-worker-too",
        action="store_true",
        help="also run the month's backfill with worker-b stopped first, to compare wall times",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=DAYS,
        choices=range(1, DAYS + 1),
        metavar="1-31",
        help="backfill March 1 to this day",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    server = os.environ.get("MAYORISTA_CLUSTER_POSTGRES_URL", "")
    if not server:
        print("cluster: set MAYORISTA_CLUSTER_POSTGRES_URL (make cluster does, through .ci/cluster)", file=sys.stderr)
        return 2
    shutil.rmtree(args.root, ignore_errors=True)
    args.root.mkdir(parents=True)
    shutil.copytree(config.ROOT / "data" / "sample", args.root / "landing")
    try:
        with running(server, args.root) as cluster:
            return _run(cluster, args)
    except MayoristaError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 2


def _run(cluster: Cluster, args: argparse.Namespace) -> int:
    began = time.monotonic()
    cluster.start()
    api = cluster.api
    dags = ("ncc11_quarterly", "meter_readings", "vpn_delivery_monthly")
    for dag_id in dags:
        api.wait_dag(dag_id)
    for dag_id in dags[:2]:
        api.unpause(dag_id)
    print(
        f"cluster up in {time.monotonic() - began:.0f} s: {', '.join(f'{s.name} pid {s.pid}' for s in cluster.services.values())}",
        flush=True,
    )

    ids = {api.trigger("ncc11_quarterly", when, {"quarter": q}, f"cluster__{q}") for q, when in QUARTERS}
    api.wait_runs("ncc11_quarterly", ids, len(ids), 1800)

    figures = {}
    if args.one_worker_too:
        cluster.services["worker-b"].stop()
        figures["1 worker"] = cluster.backfill(args.days, reprocess=False)
        cluster.start_worker("worker-b")
    figures["2 workers"] = cluster.backfill(args.days, reprocess=args.one_worker_too)

    api.unpause("vpn_delivery_monthly")
    run = api.trigger("vpn_delivery_monthly", DELIVERY_DATE, {"month": MONTH}, f"cluster__{MONTH}")
    api.wait_runs("vpn_delivery_monthly", {run}, 1, 1800)

    on, skipped, failures = report_tasks(api, dags)
    print(
        f"summary: {sum(on.values())} task instances ran, "
        + ", ".join(f"{w} {on[w]}" for w in sorted(on))
        + f"; {skipped} skipped (short-circuited); {len(failures)} failed"
    )
    for what, seconds in figures.items():
        print(
            f"backfill of {args.days} daily meter runs ({MONTH}-01..{MONTH}-{args.days:02d}) with {what}: {seconds:.0f} s"
        )
    for line in failures:
        print(f"FAILED {line}")
    cluster.stop(keep=("s3",))  # the lake stays readable for the comparison
    result = compare_warehouses(
        cluster.catalog, single_machine(cluster.root / "single"), cluster.lake, cluster.landing_prefixes
    )
    for line in result.lines:
        print(line)
    return 1 if failures or not result.equal else 0


if __name__ == "__main__":
    sys.exit(main())
