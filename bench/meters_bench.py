"""Benchmark: `mayorista meters ingest` on one full month for 2,000 points x 4 channels (~23.8M CSV rows).

Prints, for each of `--repeat` rounds (each round: the ingest into a fresh warehouse, the bare imports,
the floor, one after the other, so that all three see the same load of the shared machine) and as
medians over the rounds:
  - rows/s and peak RSS of the ingest end to end (a subprocess: start-up, VEE, completeness, GX, publish)
  - the run's own step timings (its summary's `timings:` line)
  - the fixed start-up cost: a subprocess that only imports what the command needs
  - the floor: DuckDB converting the same CSV files to Parquet, COPY (SELECT * FROM read_csv(...))
  - ratio = (end to end - start-up) / floor, per round; the median of those
Targets on the 2-core reference machine (issue #25): ratio <= 3 (600 points), >= 1.5 M rows/s and peak
RSS <= 3 GB (2,000 points).

The data are generated in a temporary directory (not committed): one CSV per participant per day,
as PrimeRead exports them. `--keep DIR` reuses/keeps the generated data there; `--points 600` for the
smaller month of the issue's ratio target."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import smec
from smec import cpu_seconds, timed_cpu

PARTICIPANTS, MONTH, DAYS = 40, "2026-03", 31


def generate(root: Path, points: int) -> None:
    if (root / "metering_points.csv").exists():
        return
    smec.write_registry(root, points, PARTICIPANTS, date(2025, 1, 1))
    smec.write_readings(root, points, PARTICIPANTS, date.fromisoformat(f"{MONTH}-01"), DAYS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse this directory")
    parser.add_argument("--points", type=int, default=2000, help="metering points (4 channels each)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is their median")
    parser.add_argument("--generate-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.points)
        return 0
    rows = args.points * 4 * DAYS * 96
    work = Path(args.keep or tempfile.mkdtemp(prefix="meters-bench-"))
    try:
        t0 = time.perf_counter()
        # in a child process: a forked child starts its peak-RSS record from the parent's size, so the
        # parent stays small for the ingest's peak RSS to be its own
        subprocess.run(
            [sys.executable, __file__, "--generate-only", str(work / "smec"), "--points", str(args.points)], check=True
        )
        files = sorted((work / "smec" / "readings").rglob("*.csv"))
        size = sum(p.stat().st_size for p in files)
        print(
            f"data: {len(files)} CSV files, {size / 1e9:.2f} GB, {rows:,} rows "
            f"({args.points} points x 4 channels x {DAYS} days x 96) in {work} (generated in {time.perf_counter() - t0:.1f}s)"
        )

        env = {
            **os.environ,
            "MAYORISTA_WAREHOUSE": str(work / "warehouse.sqlite"),
            "MAYORISTA_LAKE": str(work / "lake"),
            "GX_ANALYTICS_ENABLED": "False",
        }
        mayorista = str(Path(sys.executable).with_name("mayorista"))
        imports = "import pipelines.cli, pipelines.metering.job, polars, duckdb, pyarrow, great_expectations"
        out = work / "floor.parquet"
        rounds = []
        for n in range(args.repeat):
            shutil.rmtree(work / "lake", ignore_errors=True)
            (work / "warehouse.sqlite").unlink(missing_ok=True)
            e2e, code, output, peak_gb, e2e_cpu = timed_cpu(
                [mayorista, "meters", "ingest", "--month", MONTH, "--input", str(work / "smec")], env
            )
            if code != 0:
                print(output.strip())
                return 1
            startup, _, _, _, startup_cpu = timed_cpu([sys.executable, "-c", imports], env)
            con = duckdb.connect()
            start, cpu = time.perf_counter(), cpu_seconds()
            con.execute(
                f"COPY (SELECT * FROM read_csv('{work / 'smec' / 'readings'}/**/*.csv')) TO '{out}' (FORMAT parquet)"
            )
            floor, floor_cpu = time.perf_counter() - start, cpu_seconds() - cpu
            con.close()
            out.unlink(missing_ok=True)
            steps = next((line for line in output.splitlines() if line.startswith("timings: ")), "timings: ?")
            load = os.getloadavg()[0]
            ratio, cpu_ratio = (e2e - startup) / floor, (e2e_cpu - startup_cpu) / floor_cpu
            rounds.append((e2e, peak_gb, startup, floor, ratio, cpu_ratio))
            print(
                f"round {n + 1}: end to end {e2e:6.2f} s (cpu {e2e_cpu:5.2f}), start-up {startup:5.2f} s "
                f"(cpu {startup_cpu:5.2f}), floor {floor:5.2f} s (cpu {floor_cpu:5.2f}), ratio {ratio:5.2f}, "
                f"cpu ratio {cpu_ratio:5.2f}, peak {peak_gb:4.2f} GB, load {load:4.1f}\n  {steps}"
            )

        def med(i: int) -> float:
            return statistics.median(r[i] for r in rounds)

        e2e, startup, floor, ratio, cpu_ratio = med(0), med(2), med(3), med(4), med(5)
        peak_gb = max(r[1] for r in rounds)
        print()
        print(f"medians of {len(rounds)} round(s); load average now {os.getloadavg()[0]:.1f}")
        print(f"end to end      {e2e:7.2f} s   {rows / e2e / 1e6:5.2f} M rows/s   (target >= 1.50 at 2,000 points)")
        print(f"peak RSS        {peak_gb:7.2f} GB                     (target <= 3; the highest round)")
        print(f"start-up        {startup:7.2f} s   (importing pipelines, polars, duckdb, pyarrow, great_expectations)")
        print(f"floor (DuckDB)  {floor:7.2f} s   COPY (SELECT * FROM read_csv(...)) TO parquet")
        print(f"ratio           {ratio:7.2f}     (end to end - start-up) / floor, per round   (target <= 3)")
        print(f"cpu ratio       {cpu_ratio:7.2f}     the same in CPU seconds (less sensitive to the machine's load)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
