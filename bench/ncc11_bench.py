"""Benchmark of `mayorista ncc11` on a full-scale quarter (run: `uv run python bench/ncc11_bench.py`).

Generates 30 distributors x ~5 nodes, 150 nodes, 300 contracts, hourly (about 1.4 million input
rows) in a temporary folder and prints: end-to-end wall time and peak RSS of the command; the fixed
start-up cost (importing what the command imports); the floor (one hand-written DuckDB query that
computes the same energy table from the same CSV files); and (end to end - start-up) / floor.
Targets on the 2-core machine: <= 20 s end to end, ratio <= 4, peak RSS <= 1.5 GB."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines import warehouse
from pipelines.ncc11 import sample

QUARTER = "2026-05"
SCALE = sample.Scale(distributors=30, nodes=150, nodes_per_distributor=5, contracts_per_distributor=10, seed=7)

FLOOR_SQL = """
WITH band AS (
    SELECT hour, CASE
        WHEN hour < TIMESTAMP '2026-05-01' THEN
            CASE WHEN hour(hour) BETWEEN 18 AND 21 THEN 'punta' WHEN hour(hour) BETWEEN 6 AND 17 THEN 'intermedia' ELSE 'valle' END
        ELSE CASE WHEN hour(hour) BETWEEN 10 AND 12 OR hour(hour) BETWEEN 18 AND 20 THEN 'punta'
                  WHEN hour(hour) BETWEEN 6 AND 9 OR hour(hour) BETWEEN 13 AND 17 THEN 'intermedia' ELSE 'valle' END
    END AS band
    FROM (SELECT DISTINCT hour FROM read_csv('{d}/total_demand.csv', timestampformat='%Y-%m-%d %H:%M'))
), spot AS (
    SELECT s.distributor, b.band, sum(s.energy_mwh) AS de, sum(s.energy_mwh * p.price_usd_mwh) AS ccs
    FROM read_csv('{d}/spot_demand.csv', timestampformat='%Y-%m-%d %H:%M') s
    JOIN read_csv('{d}/nodal_prices.csv', timestampformat='%Y-%m-%d %H:%M') p USING (node, hour)
    JOIN band b USING (hour) GROUP BY ALL
), con AS (
    SELECT c.distributor, b.band, sum(c.energy_mwh) AS ce, sum(c.energy_mwh * c.price_usd_mwh) AS ccc
    FROM read_csv('{d}/contract_dispatch.csv', timestampformat='%Y-%m-%d %H:%M') c JOIN band b USING (hour) GROUP BY ALL
), tot AS (
    SELECT t.distributor, b.band, sum(t.energy_mwh) AS dt
    FROM read_csv('{d}/total_demand.csv', timestampformat='%Y-%m-%d %H:%M') t JOIN band b USING (hour) GROUP BY ALL
)
SELECT distributor, band, ccs, ccs / nullif(de, 0) AS peste, ccc, (ccc + ccs) / nullif(dt, 0) AS pmce
FROM spot JOIN con USING (distributor, band) JOIN tot USING (distributor, band)
"""


REPEAT = 5  # each figure is the median of this many runs: one run on a shared 2-core machine is noisy
IMPORTS = "import pipelines.ncc11.job, pipelines.ncc11.checks, great_expectations, duckdb, polars, pyarrow"


def _one_child(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def paired(cmd: list[str], startup_cmd: list[str]) -> tuple[float, float, float, float]:
    """The command and the bare imports, alternately, so that both see the same machine state:
    medians of the end-to-end and start-up times, of their per-pair difference, and the peak RSS."""
    pairs = [(_one_child(cmd), _one_child(startup_cmd)) for _ in range(REPEAT)]
    e2e = statistics.median(run[0] for run, _ in pairs)
    startup = statistics.median(imp[0] for _, imp in pairs)
    work = statistics.median(run[0] - imp[0] for run, imp in pairs)
    return e2e, startup, work, max(run[1] for run, _ in pairs)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ncc11-bench-") as tmp:
        root = Path(tmp)
        inputs = sample.generate(root / "in", QUARTER, SCALE)
        rows = sum(sum(1 for _ in open(p)) - 1 for p in inputs.glob("*.csv"))
        mayorista = str(Path(sys.executable).with_name("mayorista"))
        cmd = [
            mayorista,
            "ncc11",
            "--quarter",
            QUARTER,
            "--input",
            str(inputs),
            "--warehouse",
            str(root / "w.sqlite"),
            "--lake",
            str(root / "lake"),
        ]
        e2e, startup, work, rss = paired(cmd, [sys.executable, "-c", IMPORTS])
        con = duckdb.connect()
        floors = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            floor_rows = con.sql(FLOOR_SQL.format(d=inputs)).fetchall()
            floors.append(time.perf_counter() - start)
        floor = statistics.median(floors)
        ours = (
            warehouse.connect(root / "w.sqlite", read_only=True)
            .sql("SELECT distributor, band, ccs_usd FROM ncc11_energy")
            .fetchall()
        )
        want = {(d, b): c for d, b, c, *_ in floor_rows}
        worst = max(abs(c - want[(d, b)]) / max(abs(want[(d, b)]), 1.0) for d, b, c in ours)
        print(f"input rows:            {rows:,}   (each figure: median of {REPEAT} runs)")
        print(f"end to end:            {e2e:.2f} s   (target <= 20 s)")
        print(f"peak RSS:              {rss:,.0f} MB (target <= 1,536 MB)")
        print(f"start-up (imports):    {startup:.2f} s")
        print(f"floor (one DuckDB query over the CSVs): {floor:.2f} s")
        print(
            f"ratio (e2e - start-up) / floor: {work / floor:.2f} (target <= 4; median of the per-pair differences, {work:.2f} s)"
        )
        print(f"CCS agrees with the floor query: max relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
