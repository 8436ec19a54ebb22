"""Benchmark: the 30 daily `meter_readings` runs of one month under Airflow (LocalExecutor, PostgreSQL
metadata), over daily files per participant, as PrimeRead lands them.

    uv run python bench/meters_airflow_month.py --postgres postgresql+psycopg2://USER:PW@HOST:5432/postgres \
        [--points 300] [--participants 20] [--mode nightly|backfill|both] [--catalog postgres|sqlite] [--keep DIR]

Generates June 2026 (30 days) for N points: one CSV per participant per day (4 channels x 96 intervals
per point and day). Creates its own databases on the server (Airflow's metadata and, by default, the
warehouse's DuckLake catalog: the production profile), starts `airflow standalone` in its own process
group and prints:

- nightly: day D's files land, then day D's run (triggered through the REST API, param `day`), one
  after the other, as in production: each run reads one day of new files and recomputes the month
  from the stored readings. Per run: wall time (queued to finished), the ingest and report tasks' time,
  the files it read and skipped.
- backfill: all 30 days landed first, then `airflow backfill create` over the month (one run at a
  time): the first run reads every file, the other 29 find nothing new.

The databases are dropped at the end; the data stay in --keep DIR when given. The task processes
import `pipelines` from this checkout's parent (run it from a frozen copy, `git archive HEAD`, with
PYTHONPATH set to it, when others are editing the tree).

Measured 2026-11-25 (2 cores shared with another benchmark, load average 6-13), --mode nightly,
300 points, 20 participants (612 files: DuckDB wrote two files for a few participant-days):
30 runs in 921 s wall, 30.7 s a run (median 27.3 s, min 17.2 s, max 60.1 s); ingest median 15.5 s,
report median 9.0 s; each run read its day's 20-21 files (115,200 rows) and skipped the earlier ones.
--mode backfill was not measured yet."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.stack import AirflowStack, wait_for  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))  # run as `python bench/...`, the sibling is importable anyway
import smec  # noqa: E402

MONTH_START, DAYS = date(2026, 6, 1), 30  # after the DAG's start date (2026-03-01); June has 30 days


def generate(staging: Path, points: int, participants: int) -> None:
    """Registry and the month's daily files (readings/participant=P/day=D/data_0.csv), deterministic."""
    smec.write_registry(staging, points, participants, date(2024, 1, 1))
    smec.write_readings(staging, points, participants, MONTH_START, DAYS)


def land(staging: Path, smec: Path, day: date | None) -> int:
    """Move one day's files (all days: None) from the staging folder into the landing folder."""
    moved = 0
    for folder in sorted((staging / "readings").glob("participant=*/day=*")):
        if day is None or folder.name == f"day={day}":
            target = smec / "readings" / folder.relative_to(staging / "readings")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, target)
            moved += sum(1 for _ in target.iterdir())
    return moved


class Databases:
    """Fresh databases on the server, dropped at the end."""

    def __init__(self, url: str):
        import psycopg2
        from sqlalchemy.engine import make_url

        self.url = make_url(url)
        self.admin = psycopg2.connect(
            host=self.url.host,
            port=self.url.port or 5432,
            user=self.url.username,
            password=self.url.password,
            dbname=self.url.database or "postgres",
        )
        self.admin.autocommit = True
        self.names: list[str] = []

    def create(self, purpose: str) -> str:
        name = f"mayorista_bench_{purpose}_{uuid.uuid4().hex[:6]}"
        with self.admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self.admin.cursor() as cur:
            for name in self.names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()


def start_stack(out: Path, dbs: Databases, catalog: str, tag: str) -> tuple[AirflowStack, dict[str, str]]:
    warehouse = (
        dbs.create(f"catalog_{tag}").replace("postgresql+psycopg2://", "postgresql://")
        if catalog == "postgres"
        else str(out / f"warehouse-{tag}.sqlite")
    )
    extra = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dbs.create(f"airflow_{tag}"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "MAYORISTA_WAREHOUSE": warehouse,
        "MAYORISTA_LAKE": str(out / f"lake-{tag}"),
        "MAYORISTA_LANDING": str(out / f"landing-{tag}"),
    }
    stack = AirflowStack(out / f"airflow-{tag}", extra)
    began = time.monotonic()
    stack.start()
    stack.wait_dag("meter_readings")
    print(f"[{tag}] airflow standalone up in {time.monotonic() - began:.0f} s", flush=True)
    return stack, extra


def seconds(a: str | None, b: str | None) -> float:
    if not a or not b:
        return float("nan")
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def run_times(stack: AirflowStack, run: dict) -> dict[str, float]:
    tis = stack.api("GET", f"/dags/meter_readings/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
    times = {ti["task_id"]: seconds(ti["start_date"], ti["end_date"]) for ti in tis}
    times["run"] = seconds(run.get("queued_at") or run["start_date"], run["end_date"])
    return times


def manifests(warehouse: str) -> dict[str, dict]:
    from pipelines import warehouse as wh

    con = wh.connect(warehouse, read_only=True)
    try:
        rows = con.sql("SELECT run_id, manifest FROM run_manifests WHERE pipeline = 'meters'").fetchall()
    finally:
        con.close()
    return {run_id: json.loads(m)["counts"] for run_id, m in rows}


def counts_of(all_counts: dict[str, dict], dag_run_id: str) -> dict:
    return next((c for r, c in all_counts.items() if r.startswith(dag_run_id)), {})


def report(tag: str, rows: list[tuple[str, dict[str, float], dict]], wall: float) -> None:
    print(f"\n[{tag}] {len(rows)} daily runs in {wall:.0f} s wall ({wall / len(rows):.1f} s per run)")
    print(
        f"{'day':<11} {'run s':>7} {'ingest s':>9} {'report s':>9} {'files read':>11} {'skipped':>8} {'rows read':>10}"
    )
    for day, t, c in rows:
        print(
            f"{day:<11} {t['run']:7.1f} {t.get('ingest', float('nan')):9.1f} {t.get('report', float('nan')):9.1f} "
            f"{c.get('files_read', -1):11,} {c.get('files_skipped', -1):8,} {c.get('rows_read', -1):10,}"
        )
    for key in ("run", "ingest", "report"):
        values = [t[key] for _, t, _ in rows if key in t]
        print(
            f"  {key:<7} mean {statistics.mean(values):6.1f} s, median {statistics.median(values):6.1f} s, "
            f"min {min(values):6.1f} s, max {max(values):6.1f} s"
        )


def nightly(out: Path, staging: Path, dbs: Databases, catalog: str) -> None:
    stack, extra = start_stack(out, dbs, catalog, "nightly")
    try:
        smec = Path(extra["MAYORISTA_LANDING"]) / "smec"
        smec.mkdir(parents=True)
        shutil.copy(staging / "metering_points.csv", smec / "metering_points.csv")
        rows, began = [], time.monotonic()
        for k in range(DAYS):
            day = MONTH_START + timedelta(days=k)
            land(staging, smec, day)
            # the run that covers day D, as the schedule would create it: logical date D 01:00 local (07:00 UTC)
            run_id = stack.trigger("meter_readings", {"day": f"{day}"}, f"{day}T07:00:00Z", f"bench-{day}")
            state = stack.wait_run("meter_readings", run_id, timeout=1800)
            run = stack.api("GET", f"/dags/meter_readings/dagRuns/{run_id}")
            if state != "success":
                print(stack.task_report("meter_readings", run_id))
            rows.append((f"{day}", run_times(stack, run), {}))
            print(f"  {day}: {state} in {rows[-1][1]['run']:.1f} s", flush=True)
        wall = time.monotonic() - began
        all_counts = manifests(extra["MAYORISTA_WAREHOUSE"])
        rows = [(d, t, counts_of(all_counts, f"bench-{d}")) for d, t, _ in rows]
        report("nightly: one day lands, its run", rows, wall)
    finally:
        stack.stop()


def backfill(out: Path, staging: Path, dbs: Databases, catalog: str) -> None:
    stack, extra = start_stack(out, dbs, catalog, "backfill")
    try:
        smec = Path(extra["MAYORISTA_LANDING"]) / "smec"
        smec.mkdir(parents=True)
        shutil.copy(staging / "metering_points.csv", smec / "metering_points.csv")
        print(f"[backfill] {land(staging, smec, None)} files landed", flush=True)
        began = time.monotonic()
        end = MONTH_START + timedelta(days=DAYS)
        done = stack.backfill_create("meter_readings", f"{MONTH_START}", f"{end}", "--max-active-runs", "1")
        assert done.returncode == 0, done.stdout + done.stderr

        def finished() -> list[dict]:
            runs = stack.api("GET", "/dags/meter_readings/dagRuns", params={"run_type": "backfill", "limit": 100})[
                "dag_runs"
            ]
            return runs if len(runs) == DAYS and all(r["state"] in ("success", "failed") for r in runs) else []

        runs = wait_for("the month's backfill", finished, 3 * 3600, every=2)
        wall = time.monotonic() - began
        all_counts = manifests(extra["MAYORISTA_WAREHOUSE"])
        rows = [
            (r["logical_date"][:10], run_times(stack, r), counts_of(all_counts, r["dag_run_id"]))
            for r in sorted(runs, key=lambda r: r["logical_date"])
        ]
        failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
        report(f"backfill create, all days landed first ({len(failed)} failed)", rows, wall)
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", required=True, help="postgresql+psycopg2://... of a role that may create databases"
    )
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--mode", choices=("nightly", "backfill", "both"), default="both")
    parser.add_argument("--catalog", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="meters-airflow-month-"))
    staging = out / "staging"
    if not (staging / "metering_points.csv").exists():
        began = time.monotonic()
        generate(staging, args.points, args.participants)
        print(
            f"generated {args.points} points x {DAYS} days ({args.participants} files a day) in {staging} "
            f"({time.monotonic() - began:.0f} s)",
            flush=True,
        )
    dbs = Databases(args.postgres)
    try:
        if args.mode in ("nightly", "both"):
            nightly(out, staging, dbs, args.catalog)
        if args.mode in ("backfill", "both"):
            backfill(out, staging, dbs, args.catalog)
    finally:
        dbs.drop()
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
