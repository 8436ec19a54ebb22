"""Small hand-made SMEC inputs shared by the metering tests and the other tests that read meter data (helpers only, no tests here).

April 2026 has 30 days = 2,880 intervals per channel. Three points:
  P1 (PA, consumption) DEV1, active all month
  P2 (PA, generation)  DEV2, starts 2026-04-16  -> 15 days = 1,440 intervals
  P3 (PB, consumption) DEV3, retires 2026-04-10 -> 10 days =   960 intervals"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.metering import landing, readings
from pipelines.metering import registry as reg
from pipelines.metering.keys import CHANNELS, INTERVALS_PER_DAY
from pipelines.periods import Month

APRIL = datetime(2026, 4, 1)
HEADER = "point_id,participant,kind,node,device_id,serial,connectivity,vpn_id,public_ip,public_port,private_ip,private_port,valid_from,valid_to"
REGISTRY = [
    "P1,PA,consumption,N1,DEV1,S1,public_ip,,190.56.10.1,7001,10.1.1.1,7701,2025-01-01,",
    "P2,PA,generation,N1,DEV2,S2,vpn_direct,VPN-A,,,10.1.1.2,7701,2026-04-16,",
    "P3,PB,consumption,N2,DEV3,S3,vpn_provider_shared,VPN-S,,,10.2.1.3,7701,2025-01-01,2026-04-10",
]


def write_registry(root: Path, rows: list[str] = REGISTRY) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "metering_points.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def value_of(device: str, i: int, channel: str) -> float:
    """A deterministic value with no repeats, spikes or negatives: 1.0 + i/100 + small offsets."""
    return round(1.0 + i / 100 + CHANNELS.index(channel) * 0.001 + int(device[3:]) * 0.0001, 4)


def series(device: str, first_day: int, last_day: int, channels=CHANNELS, skip: set[int] = frozenset()) -> pl.DataFrame:
    """Every interval of days first_day..last_day (1-based, April) for the device, interval i ending
    APRIL + 15 min * i, without the intervals in `skip`."""
    rows = []
    for channel in channels:
        for i in range((first_day - 1) * INTERVALS_PER_DAY + 1, last_day * INTERVALS_PER_DAY + 1):
            if i not in skip:
                rows.append(
                    (
                        device,
                        (APRIL + timedelta(minutes=15 * i)).strftime("%Y-%m-%d %H:%M"),
                        channel,
                        str(value_of(device, i, channel)),
                    )
                )
    return pl.DataFrame(rows, schema=["device_id", "interval_end", "channel", "value"], orient="row")


def write_readings(root: Path, name: str, frame: pl.DataFrame) -> Path:
    path = root / "readings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path


def write_lines(root: Path, name: str, lines: list[str]) -> Path:
    path = root / "readings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("device_id,interval_end,channel,value\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def landed(path: Path, second: int) -> None:
    """Set when a file landed (its modification time): the later landing wins."""
    os.utime(path, ns=(second * 10**9, second * 10**9))


def stage(root: Path, out: Path, label: str = "2026-04") -> readings.Staged:
    """Stage every readings file under root for the month `label` into `out` (the ingest's first step, alone)."""
    month = Month.parse(label)
    registry = reg.load_registry(root)
    points = reg.month_points(registry, month)
    files = landing.find_files(root)
    return readings.stage(
        month,
        files,
        list(range(len(files))),
        reg.device_days(registry, month, points),
        registry["device_id"].unique().to_list(),
        out,
        readings.Accepted(datetime(2026, 11, 1)),
    )


def standard_month(root: Path) -> None:
    """Registry + complete series for the three points (one file per participant)."""
    write_registry(root)
    write_readings(root, "2026-04/PA.csv", pl.concat([series("DEV1", 1, 30), series("DEV2", 16, 30)]))
    write_readings(root, "2026-04/PB.csv", series("DEV3", 1, 10))


def query(workspace: Path, sql: str) -> list[tuple]:
    """Rows of `sql` against the test's warehouse (read-only)."""
    from pipelines import warehouse

    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()
