"""Benchmark: `mayorista meters ingest` on one full month for 2,000 points x 4 channels (~23.8M CSV rows).

Prints, from one run:
  - rows/s and peak RSS of the ingest end to end (a subprocess: start-up, VEE, completeness, GX, publish)
  - the fixed start-up cost: a subprocess that only imports what the command needs
  - the floor: DuckDB converting the same CSV files to Parquet, COPY (SELECT * FROM read_csv(...))
  - ratio = (end to end - start-up) / floor
Targets on the 2-core reference machine: ratio <= 3, >= 1M rows/s, peak RSS <= 4 GB.

The data are generated in a temporary directory (not committed): one CSV per participant per day,
as PrimeRead exports them. `--keep DIR` reuses/keeps the generated data there."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import smec
from smec import timed

POINTS, PARTICIPANTS, MONTH, DAYS = 2000, 40, "2026-03", 31
ROWS = POINTS * 4 * DAYS * 96


def generate(root: Path) -> None:
    if (root / "metering_points.csv").exists():
        return
    smec.write_registry(root, POINTS, PARTICIPANTS, date(2025, 1, 1))
    smec.write_readings(root, POINTS, PARTICIPANTS, date.fromisoformat(f"{MONTH}-01"), DAYS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse this directory")
    parser.add_argument("--generate-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only)
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="meters-bench-"))
    try:
        t0 = time.perf_counter()
        # in a child process: a forked child starts its peak-RSS record from the parent's size, so the
        # parent stays small for the ingest's peak RSS to be its own
        subprocess.run([sys.executable, __file__, "--generate-only", str(work / "smec")], check=True)
        files = sorted((work / "smec" / "readings").rglob("*.csv"))
        size = sum(p.stat().st_size for p in files)
        print(
            f"data: {len(files)} CSV files, {size / 1e9:.2f} GB, {ROWS:,} rows "
            f"({POINTS} points x 4 channels x {DAYS} days x 96) in {work} (generated in {time.perf_counter() - t0:.1f}s)"
        )

        env = {
            **os.environ,
            "MAYORISTA_WAREHOUSE": str(work / "warehouse.sqlite"),
            "MAYORISTA_LAKE": str(work / "lake"),
            "GX_ANALYTICS_ENABLED": "False",
        }
        shutil.rmtree(work / "lake", ignore_errors=True)
        (work / "warehouse.sqlite").unlink(missing_ok=True)

        mayorista = str(Path(sys.executable).with_name("mayorista"))
        e2e, code, output, peak_gb = timed(
            [mayorista, "meters", "ingest", "--month", MONTH, "--input", str(work / "smec")], env
        )
        print(output.strip())
        if code != 0:
            return 1

        startup, _, _, _ = timed(
            [
                sys.executable,
                "-c",
                "import pipelines.cli, pipelines.metering.job, polars, duckdb, pyarrow, great_expectations",
            ],
            env,
        )

        out = work / "floor.parquet"
        con = duckdb.connect()
        start = time.perf_counter()
        con.execute(
            f"COPY (SELECT * FROM read_csv('{work / 'smec' / 'readings'}/**/*.csv')) TO '{out}' (FORMAT parquet)"
        )
        floor = time.perf_counter() - start
        con.close()
        out.unlink(missing_ok=True)

        ratio = (e2e - startup) / floor
        print()
        print(f"end to end      {e2e:7.2f} s   {ROWS / e2e / 1e6:5.2f} M rows/s   (target >= 1.00)")
        print(f"peak RSS        {peak_gb:7.2f} GB                     (target <= 4)")
        print(f"start-up        {startup:7.2f} s   (importing pipelines, polars, duckdb, pyarrow, great_expectations)")
        print(f"floor (DuckDB)  {floor:7.2f} s   COPY (SELECT * FROM read_csv(...)) TO parquet")
        print(f"ratio           {ratio:7.2f}     (end to end - start-up) / floor   (target <= 3)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
