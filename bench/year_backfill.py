"""Benchmark, by hand, not in CI: how long a year of backfill takes on this machine, under a real scheduler.

    uv run python bench/year_backfill.py [--postgres URL] [--days 365] [--out DIR]

Generates a year of landing data (meter registry and readings for 12 months, NCC-11 inputs for four
tariff quarters) with the sample generators, starts `airflow standalone` (SQLite, or PostgreSQL +
LocalExecutor with --postgres), runs `airflow backfill create` for meter_readings over the days and
ncc11_quarterly over the four quarters (the CLI's default of 10 active runs; the warehouse writers run one at a time), polls until
every run has finished and prints the timings. Then the same year with `mayorista backfill`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.stack import AirflowStack, wait_for  # noqa: E402

QUARTERS = ("2025-05", "2025-08", "2025-11", "2026-02")
FIRST_DAY = date(2025, 5, 1)


def months_of(days: int) -> list[str]:
    last = FIRST_DAY + timedelta(days=days - 1)
    months, day = [], FIRST_DAY
    while day <= last:
        months.append(f"{day:%Y-%m}")
        day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


def landing(root: Path, months: list[str]) -> Path:
    from pipelines.metering import sample as meters
    from pipelines.ncc11 import sample as ncc11

    smec = root / "smec"
    smec.mkdir(parents=True)
    reg = meters.registry()
    reg.write_csv(smec / "metering_points.csv", date_format="%Y-%m-%d")
    rng = np.random.default_rng(2025)
    for month in months:
        readings = meters._series(month, reg, rng)  # clean series; the defects are the sample's business
        folder = smec / "readings" / month
        folder.mkdir(parents=True)
        for participant, _ in meters.PARTICIPANTS:
            readings.filter(pl.col("_participant") == participant).drop("_point", "_participant").write_parquet(
                folder / f"{participant}_{month}.parquet", compression="zstd"
            )
    for quarter in QUARTERS:
        ncc11.generate(root / "ncc11", quarter)
    return root


def airflow_year(out: Path, postgres: str | None, days: int) -> None:
    extra = {
        "MAYORISTA_WAREHOUSE": str(out / "airflow-warehouse.sqlite"),
        "MAYORISTA_LAKE": str(out / "airflow-lake"),
        "MAYORISTA_LANDING": str(out / "landing"),
    }
    if postgres:
        extra |= {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    stack = AirflowStack(out / "airflow", extra)
    try:
        began = time.monotonic()
        stack.start()
        for dag_id in ("meter_readings", "ncc11_quarterly"):
            stack.wait_dag(dag_id)
        print(f"airflow up in {time.monotonic() - began:.0f} s", flush=True)
        last = FIRST_DAY + timedelta(days=days)
        ranges = {"meter_readings": (f"{FIRST_DAY}", f"{last}"), "ncc11_quarterly": ("2025-05-01", "2026-02-02")}
        started = {}
        for dag_id, (start, end) in ranges.items():
            done = stack.backfill_create(dag_id, start, end)
            assert done.returncode == 0, done.stdout + done.stderr
            started[dag_id] = time.monotonic()
        expected = {"meter_readings": days, "ncc11_quarterly": len(QUARTERS)}
        finished: dict[str, float] = {}

        def count(dag_id: str, state: str | None = None) -> int:
            params = {"run_type": "backfill", "limit": 1} | ({"state": state} if state else {})
            return stack.api("GET", f"/dags/{dag_id}/dagRuns", params=params)["total_entries"]  # pages stop at 100

        polls = iter(range(10**9))

        def all_done() -> bool:
            report = next(polls) % 12 == 0  # a progress line a minute
            for dag_id, n in expected.items():
                if dag_id in finished:
                    continue
                failed = count(dag_id, "failed")
                done = count(dag_id, "success") + failed
                if report:
                    print(
                        f"  {dag_id}: {done}/{n} runs finished after {time.monotonic() - started[dag_id]:.0f} s",
                        flush=True,
                    )
                if done == n:
                    finished[dag_id] = time.monotonic()
                    print(
                        f"{dag_id}: {n} backfill runs finished in {finished[dag_id] - started[dag_id]:.0f} s "
                        f"({(finished[dag_id] - started[dag_id]) / n:.1f} s/run), {failed} failed",
                        flush=True,
                    )
            return len(finished) == len(expected)

        wait_for("the year's backfill", all_done, timeout=6 * 3600, every=5)
    finally:
        stack.stop()


def cli_year(out: Path, months: list[str]) -> None:
    from pipelines.cli import main

    common = [
        "--landing",
        str(out / "landing"),
        "--warehouse",
        str(out / "cli-warehouse.sqlite"),
        "--lake",
        str(out / "cli-lake"),
        "--no-progress",
    ]
    for args in (
        ["meters", "--from", months[0], "--to", months[-1]],
        ["ncc11", "--from", QUARTERS[0], "--to", QUARTERS[-1]],
    ):
        began = time.monotonic()
        code = main(["backfill", *args, *common])
        print(f"mayorista backfill {' '.join(args)}: exit {code} in {time.monotonic() - began:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=None, help="postgresql+psycopg2://... (an empty database)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="year-backfill-"))
    months = months_of(args.days)
    began = time.monotonic()
    landing(out / "landing", months)
    print(
        f"landing data for {months[0]}..{months[-1]} and quarters {', '.join(QUARTERS)} in {out} "
        f"({time.monotonic() - began:.0f} s)",
        flush=True,
    )
    cli_year(out, months)
    airflow_year(out, args.postgres, args.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())
