"""Benchmark: a year of SMEC readings for 2,000 points, as PrimeRead lands them (one CSV per
participant per day), backfilled with the CLI; then the nightly run of one new day.

Prints, from one run:
  - `mayorista backfill meters --from 2025-01 --to 2025-12`: wall time, rows/s, and for every month its
    seconds, rows and memory (the backfill's own per-month lines), plus the process's peak RSS;
  - one daily run (`meters ingest --month 2025-12` after the files of 31 December landed) with a year
    of history in the warehouse and the landing folder;
  - the same daily run with one month of history (a warehouse and landing folder holding only
    December 1-30).
Each daily run is run `--daily-repeat` times (default 3) from the same state; its median counts (one
run on a shared machine moved the ratio by a tenth).
Targets on the 2-core reference machine (issue #25): the year in <= 150 s, VEE included, peak RSS
<= 3 GB and flat from month to month, the daily run with a year of history within 1.2x of the one with
a month of history. It also times the daily run with two months of history, where December's history
rules have November to compare with, as with a year.

The data are generated in a temporary directory (about 12 GB of CSV, not committed); `--keep DIR`
reuses/keeps them there. `--points N` for a smaller trial run."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import smec
from smec import timed

PARTICIPANTS, YEAR = 40, 2025
LAST_DAY = date(YEAR, 12, 31)  # landed after the backfill: the daily run's new day


def generate(root: Path, points: int) -> None:
    """Registry and a year of daily files, one month at a time (deterministic values)."""
    if (root / "metering_points.csv").exists():
        return
    smec.write_registry(root, points, PARTICIPANTS, date(2024, 1, 1))
    for month in range(1, 13):
        first = date(YEAR, month, 1)
        days = ((date(YEAR + (month == 12), month % 12 + 1, 1)) - first).days
        smec.write_readings(root, points, PARTICIPANTS, first, days, append=True)


def day_files(readings: Path, day: date) -> list[Path]:
    return sorted(readings.glob(f"participant=*/day={day}/*.csv"))


def link_tree(files: list[Path], src: Path, dst: Path) -> None:
    """Land `files` under `dst` as hard links (same bytes, no copy); each keeps its modification time."""
    for f in files:
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(f, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, default=None, help="generate into / reuse this directory")
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument(
        "--daily-repeat", type=int, default=3, help="runs of each daily run, from the same state (the median counts)"
    )
    parser.add_argument("--generate-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.points)
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="meters-year-"))
    mayorista = str(Path(sys.executable).with_name("mayorista"))
    try:
        t0 = time.perf_counter()
        data = work / "data"
        subprocess.run(
            [sys.executable, __file__, "--generate-only", str(data), "--points", str(args.points)], check=True
        )
        files = sorted((data / "readings").rglob("*.csv"))
        rows = args.points * 4 * 96 * 365
        print(
            f"data: {len(files):,} daily CSV files, {sum(p.stat().st_size for p in files) / 1e9:.2f} GB, {rows:,} rows "
            f"({args.points} points x 4 channels x 365 days x 96) in {data} (ready in {time.perf_counter() - t0:.0f} s)"
        )
        last = set(day_files(data / "readings", LAST_DAY))

        def fresh(name: str, landed: list[Path]) -> tuple[Path, dict[str, str]]:
            home = work / name
            shutil.rmtree(home, ignore_errors=True)
            (home / "smec").mkdir(parents=True)
            shutil.copy(data / "metering_points.csv", home / "smec")
            link_tree(landed, data, home / "smec")
            return home, {
                **os.environ,
                "MAYORISTA_WAREHOUSE": str(home / "warehouse.sqlite"),
                "MAYORISTA_LAKE": str(home / "lake"),
                "MAYORISTA_LANDING": str(home),
                "GX_ANALYTICS_ENABLED": "False",
            }

        # 1. the year, less its last day, by the CLI backfill
        year_home, env = fresh("year", [f for f in files if f not in last])
        wall, code, output, peak = timed(
            [mayorista, "backfill", "meters", "--from", f"{YEAR}-01", "--to", f"{YEAR}-12"], env
        )
        months = [line for line in output.splitlines() if re.match(rf"{YEAR}-\d\d (ok|FAILED)", line)]
        print("\n".join(months) or output[-3000:])
        if code != 0:
            print(output[-3000:])
            return 1
        year_rows = rows - args.points * 4 * 96
        print(
            f"backfill        {wall:7.1f} s   {year_rows / wall / 1e6:5.2f} M rows/s   peak RSS {peak:.2f} GB"
            f"   (issue #25's targets: <= 150 s, <= 3 GB)"
        )

        def daily(home: Path, env: dict[str, str]) -> float | None:
            """The median seconds of the daily run (the last day landed in `home`), run `--daily-repeat`
            times from the same state: before each run but the first, the warehouse's catalog is copied
            back and its lake linked back (data files are never changed in place)."""
            saved = home.with_name(f"{home.name}.before-daily")
            shutil.rmtree(saved, ignore_errors=True)
            saved.mkdir()
            shutil.copy2(home / "warehouse.sqlite", saved / "warehouse.sqlite")
            shutil.copytree(home / "lake", saved / "lake", copy_function=os.link)
            link_tree(sorted(last), data, home / "smec")
            runs = []
            for n in range(args.daily_repeat):
                if n:
                    shutil.rmtree(home / "lake")
                    for stale in home.glob("warehouse.sqlite-*"):  # a journal of the run before: not ours
                        stale.unlink()
                    shutil.copy2(saved / "warehouse.sqlite", home / "warehouse.sqlite")
                    shutil.copytree(saved / "lake", home / "lake", copy_function=os.link)
                seconds, code, output, _ = timed(
                    [mayorista, "meters", "ingest", "--month", f"{YEAR}-12", "--input", str(home / "smec")], env
                )
                if code != 0:
                    print(output[-3000:])
                    return None
                runs.append(seconds)
            shutil.rmtree(saved)
            print(f"  ({home.name}: {', '.join(f'{s:.2f}' for s in runs)} s)")
            return statistics.median(runs)

        # 2. one new day with a year of history
        daily_year = daily(year_home, env)
        if daily_year is None:
            return 1
        print(f"daily run, a year of history   {daily_year:6.2f} s")

        def daily_with(name: str, history: list[Path], backfill: tuple[str, str]) -> float | None:
            """The daily run's seconds in a warehouse that a backfill of the months `backfill` filled
            from `history` alone."""
            home, env = fresh(name, history)
            _, code, output, _ = timed(
                [mayorista, "backfill", "meters", "--from", backfill[0], "--to", backfill[1]], env
            )
            if code != 0:
                print(output[-3000:])
                return None
            return daily(home, env)

        # 3. the same day with one month of history
        december = [f for f in files if f"/day={YEAR}-12-" in str(f) and f not in last]
        daily_month = daily_with("month", december, (f"{YEAR}-12", f"{YEAR}-12"))
        if daily_month is None:
            return 1
        print(f"daily run, a month of history  {daily_month:6.2f} s")
        print(f"ratio year / month             {daily_year / daily_month:6.2f}   (target <= 1.2)")

        # 4. and with two: December's history rules (config/vee.toml: the weeks before the month) then
        # compare with November, as they do with a year; with a month of history they have nothing to
        # compare with, and do less. The year / two months ratio is the run's growth with history alone
        november = [f for f in files if f"/day={YEAR}-11-" in str(f)]
        daily_two = daily_with("two-months", november + december, (f"{YEAR}-11", f"{YEAR}-12"))
        if daily_two is None:
            return 1
        print(f"daily run, two months of history {daily_two:6.2f} s")
        print(f"ratio year / two months        {daily_year / daily_two:6.2f}   (history rules comparing in both)")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
