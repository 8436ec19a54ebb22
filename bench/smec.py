"""What the metering benchmarks share: PrimeRead-shaped data generated with DuckDB (deterministic: the
values come from a hash of the key, so every run of a benchmark reads the same bytes) and the timing of
one child process. Imported by the bench scripts as a sibling module (`python bench/<script>.py`)."""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb


def write_registry(root: Path, points: int, participants: int, valid_from: date) -> None:
    """`metering_points.csv`: point i is PT-i, device DEV-i, of participant MP(i mod participants); every
    fifth point a generator; all active from `valid_from`."""
    root.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"""
            COPY (
              SELECT printf('PT-%05d', i) AS point_id, printf('MP%02d', i % {participants}) AS participant,
                     CASE WHEN i % 5 = 0 THEN 'generation' ELSE 'consumption' END AS kind, printf('N%02d', i % 17) AS node,
                     printf('DEV%05d', i) AS device_id, printf('SN%07d', i) AS serial, 'vpn_direct' AS connectivity,
                     printf('VPN-%02d', i % {participants}) AS vpn_id, NULL AS public_ip, NULL AS public_port,
                     printf('10.%d.%d.%d', i // 65536 + 1, (i // 256) % 256, i % 256) AS private_ip, 7701 AS private_port,
                     DATE '{valid_from}' AS valid_from, NULL AS valid_to
              FROM range({points}) t(i)
            ) TO '{root / "metering_points.csv"}' (HEADER)""")


def write_readings(root: Path, points: int, participants: int, first: date, days: int, append: bool = False) -> None:
    """Every point's 4 channels for `days` days from `first`, as PrimeRead exports them: one CSV per
    participant and day (readings/participant=P/day=D/data_0.csv; `append`: next to what is there)."""
    (root / "readings").mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"""
            COPY (
              WITH pts AS (SELECT i, printf('DEV%05d', i) AS device_id, printf('MP%02d', i % {participants}) AS participant
                           FROM range({points}) t(i)),
                   ts AS (SELECT TIMESTAMP '{first} 00:15' + INTERVAL (k * 15) MINUTE AS interval_end FROM range({days * 96}) t(k)),
                   ch AS (SELECT * FROM (VALUES ('kwh_del'), ('kwh_rec'), ('kvarh_del'), ('kvarh_rec')) c(channel))
              SELECT participant, strftime(interval_end - INTERVAL 15 MINUTE, '%Y-%m-%d') AS day, device_id,
                     strftime(interval_end, '%Y-%m-%d %H:%M') AS interval_end, channel,
                     round(50 + 40 * sin(epoch(interval_end) / 13751.0 + i) + (hash(i, interval_end, channel) % 1000) / 100.0, 3) AS value
              FROM pts, ts, ch
              ORDER BY participant, day, device_id, channel, interval_end
            ) TO '{root / "readings"}' (FORMAT csv, HEADER, PARTITION_BY (participant, day){", APPEND" if append else ""})""")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, float]:
    """(wall seconds, exit code, output, peak RSS in GB) of one child process."""
    wall, code, output, peak, _ = timed_cpu(cmd, env)
    return wall, code, output, peak


def timed_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, float, float]:
    """(wall seconds, exit code, output, peak RSS in GB, CPU seconds) of one child process. os.wait4
    returns that child's own resource usage (no psutil needed, no mixing with other children). The CPU
    seconds (user + system, all threads) follow the load of a shared machine much less than the wall
    time does: docs/performance.md compares both with the floor. What ran before (a backfill that wrote
    gigabytes of Parquet) is flushed to disk first, so that its write-back is not timed as this command."""
    os.sync()
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        peak = usage.ru_maxrss * 1024 / 1e9  # Linux: KiB
        return wall, os.waitstatus_to_exitcode(status), out.read(), peak, usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    """This process's CPU seconds so far (user + system, all its threads: DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
