"""Deterministic sample of the SMEC inputs: `metering_points.csv` and `readings/` for 2026-03 and 2026-04.

50 points of 5 participants (consumption and generation), each participant delivering one Parquet file
per month, plus a CSV resend with the defects a metering engineer meets: a duplicate that disagrees, an
unknown device, an off-grid timestamp, a non-numeric value, a row of the next month. The series
themselves carry gaps (short: estimated; long: not), a stuck register, a spike, a negative value, a
meter replaced mid-March, a point that starts mid-April and one that retires mid-April (whose meter
keeps answering for a day). Same bytes on every run (seeded numpy, fixed file order).

Also the frontier consumption points of three of the NCC-11 sample's distributors (DIST01-DIST03; DIST04
has none), whose energy follows the NCC-11 sample's projection of quarter 2026-02 within a few percent,
so that the ex-post (`mayorista expost --quarter 2026-02`) compares real-looking figures. They are
reached by public IP (no VPN: the delivery sample's VPN changes stay as they are), carry their own
plausible maximum (config/vee.toml) and one short gap in April (estimated: April below 100 %)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.metering.keys import CHANNELS
from pipelines.periods import Month

MONTHS = ("2026-03", "2026-04")
PARTICIPANTS = (
    ("COMLUZ", "consumption"),
    ("HIDRONOR", "generation"),
    ("SOLSUR", "generation"),
    ("INDPAC", "consumption"),
    ("GUESTE", "consumption"),
)
CONNECTIVITY = ("public_ip", "vpn_direct", "vpn_provider_single", "vpn_provider_shared")
# (point, distributor, share of the distributor's energy, metered / projected): the NCC-11 sample's
# distributors as metering participants; DIST04 has no metering point (the ex-post shows it so)
FRONTIER = (
    ("PM-051", "DIST01", 0.6, 1.03),
    ("PM-052", "DIST01", 0.4, 1.03),
    ("PM-053", "DIST02", 1.0, 0.96),
    ("PM-054", "DIST03", 0.7, 1.01),
    ("PM-055", "DIST03", 0.3, 1.01),
)
FRONTIER_QUARTER = "2026-02"  # the NCC-11 sample quarter holding the metered months (Feb-Apr)


def registry() -> pl.DataFrame:
    rows = []
    for n in range(1, 51):
        participant, kind = PARTICIPANTS[(n - 1) % 5]
        connectivity = CONNECTIVITY[(n - 1) % 4] if participant != "COMLUZ" else "public_ip"
        public = connectivity == "public_ip"
        base = {
            "point_id": f"PM-{n:03d}",
            "participant": participant,
            "kind": kind,
            "node": f"NODE-{(n - 1) % 7 + 1}",
            "device_id": f"DEV-{10000 + n}",
            "serial": f"SN{700000 + 13 * n}",
            "connectivity": connectivity,
            "vpn_id": None if public else f"VPN-{participant}-{1 if connectivity != 'vpn_provider_shared' else 'SH'}",
            "public_ip": f"190.56.{(n - 1) % 5 + 10}.1" if public else None,
            "public_port": 7000 + n if public else None,
            "private_ip": f"10.{(n - 1) % 5 + 1}.1.{100 + n}",
            "private_port": 7701,
            "valid_from": date(2025, 1, 1),
            "valid_to": None,
        }
        if n == 7:  # meter replaced on 2026-03-20: same point, new device and serial
            rows.append({**base, "valid_to": date(2026, 3, 19)})
            base = {**base, "device_id": "DEV-20007", "serial": "SN900007", "valid_from": date(2026, 3, 20)}
        if n == 49:
            base["valid_from"] = date(2026, 4, 16)  # new point, starts mid-April
        if n == 50:
            base["valid_to"] = date(2026, 4, 10)  # retired mid-April
        rows.append(base)
    for k, (point, distributor, _, _) in enumerate(FRONTIER, start=1):
        rows.append(
            {
                "point_id": point,
                "participant": distributor,
                "kind": "consumption",
                "node": f"NODE-{k % 7 + 1}",
                "device_id": f"DEV-3{k:04d}",
                "serial": f"SN95{k:04d}",
                "connectivity": "public_ip",
                "vpn_id": None,
                "public_ip": f"200.6.{k}.10",
                "public_port": 7100 + k,
                "private_ip": f"10.9.1.{100 + k}",
                "private_port": 7701,
                "valid_from": date(2025, 1, 1),
                "valid_to": None,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "point_id": pl.String,
            "participant": pl.String,
            "kind": pl.String,
            "node": pl.String,
            "device_id": pl.String,
            "serial": pl.String,
            "connectivity": pl.String,
            "vpn_id": pl.String,
            "public_ip": pl.String,
            "public_port": pl.Int64,
            "private_ip": pl.String,
            "private_port": pl.Int64,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
        },
    )


def _series(month: str, reg: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """All four channels of every device for the days it is registered (plus the retired meter's next day)."""
    year, mon = map(int, month.split("-"))
    start = datetime(year, mon, 1)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1)
    n = int((end - start) / timedelta(minutes=15))
    ends = np.array([start + timedelta(minutes=15 * (i + 1)) for i in range(n)], dtype="datetime64[us]")
    hour = (np.arange(n) % 96) / 4.0  # hour of the day at the interval's start
    frames = []
    for row in reg.iter_rows(named=True):
        first = max(row["valid_from"], start.date())
        last = min(row["valid_to"] or date(9999, 1, 1), Month.containing(start).last_day)
        if row["point_id"] == "PM-050":
            last = last + timedelta(days=1)  # retired, but the old meter still answers a day longer
        if first > last:
            continue
        days = np.arange(n) // 96
        mask = (days >= (first - start.date()).days) & (days <= (last - start.date()).days)
        rng.random()  # (kept: the noise and defects below stay where they were)
        # a point's size is its own, the same every month: a new random size each month would make every
        # point jump by up to 10x at a month boundary, which VEE's history rules rightly flag
        size = 5.0 + 45.0 * np.random.default_rng(int(row["point_id"].split("-")[-1])).random()
        noise = 1.0 + 0.05 * rng.standard_normal(n)
        if row["kind"] == "consumption":
            profile = 0.55 + 0.45 * np.clip(np.sin((hour - 6.0) / 24.0 * 2 * np.pi) + 0.3, 0, None)
            main = size * profile * noise
            values = {"kwh_del": main, "kwh_rec": np.zeros(n), "kvarh_del": 0.3 * main, "kvarh_rec": np.zeros(n)}
        else:
            if row["participant"] == "SOLSUR":
                profile = np.clip(np.sin((hour - 6.0) / 12.0 * np.pi), 0, None)
            else:
                profile = np.full(n, 0.8)
            main = size * profile * noise
            aux = np.where(main > 0.01, 0.0, 0.02 * size * (1.0 + 0.2 * rng.standard_normal(n)))
            values = {"kwh_del": aux, "kwh_rec": main, "kvarh_del": 0.05 * main, "kvarh_rec": 0.1 * main}
        for channel in CHANNELS:
            frames.append(
                pl.DataFrame(
                    {
                        "device_id": row["device_id"],
                        "interval_end": ends[mask],
                        "channel": channel,
                        "value": np.round(values[channel][mask], 2),
                        "_point": row["point_id"],
                        "_participant": row["participant"],
                    }
                )
            )
    return pl.concat(frames)


def _frontier(month: str) -> pl.DataFrame:
    """The frontier points' four channels (same columns as `_series`): each hour of the NCC-11 sample's
    projected total demand of its distributor (MWh), times the point's share and its metered/projected
    ratio, spread over the hour's 4 intervals with 1 % noise, in kWh; kvarh_del 30 % of it. Its own
    random stream, so the other points' series stay as they were. April loses 6 intervals of PM-054
    (2026-04-14 09:15..10:30, all channels): estimated by interpolation, below 100 % complete."""
    from pipelines.ncc11 import sample as ncc11_sample

    rng = np.random.default_rng([20260401, int(month[-2:])])
    demand = ncc11_sample.frames(FRONTIER_QUARTER)["total_demand"].filter(pl.col("hour").dt.strftime("%Y-%m") == month)
    registry_ = registry()
    frames = []
    for point, distributor, share, ratio in FRONTIER:
        hourly = demand.filter(pl.col("distributor") == distributor).sort("hour")
        n = hourly.height * 4
        kwh = np.repeat(hourly["energy_mwh"].to_numpy() * 1000.0 * share * ratio / 4.0, 4)
        kwh = kwh * (1.0 + 0.01 * rng.standard_normal(n))
        ends = np.repeat(hourly["hour"].to_numpy(), 4) + np.tile(
            np.array([15, 30, 45, 60], dtype="timedelta64[m]"), hourly.height
        )
        device = registry_.filter(pl.col("point_id") == point)["device_id"][0]
        values = {"kwh_del": kwh, "kwh_rec": np.zeros(n), "kvarh_del": 0.3 * kwh, "kvarh_rec": np.zeros(n)}
        for channel in CHANNELS:
            frames.append(
                pl.DataFrame(
                    {
                        "device_id": device,
                        "interval_end": ends.astype("datetime64[us]"),
                        "channel": channel,
                        "value": np.round(values[channel], 2),
                        "_point": point,
                        "_participant": distributor,
                    }
                )
            )
    readings = pl.concat(frames)
    if month == "2026-04":
        at = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M")  # noqa: E731
        t = pl.col("interval_end")
        readings = readings.filter(
            ~((pl.col("_point") == "PM-054") & t.is_between(at("2026-04-14 09:15"), at("2026-04-14 10:30")))
        )
    return readings


def _defects(month: str, readings: pl.DataFrame) -> pl.DataFrame:
    """Gaps, a stuck register, a spike and a negative value in the delivered series."""
    t = pl.col("interval_end")
    at = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M")  # noqa: E731
    if month == "2026-03":
        # PM-002: link down 2026-03-05 08:15..08:45 (3 intervals, all channels: estimated)
        return readings.filter(
            ~((pl.col("_point") == "PM-002") & t.is_between(at("2026-03-05 08:15"), at("2026-03-05 08:45")))
        )
    drop = (
        ((pl.col("_point") == "PM-005") & t.is_between(at("2026-04-10 10:15"), at("2026-04-10 10:45")))  # 3 intervals
        | ((pl.col("_point") == "PM-004") & t.is_between(at("2026-04-12 06:15"), at("2026-04-12 12:00")))  # 6 hours
        | ((pl.col("_point") == "PM-010") & (t > at("2026-04-29 00:00")))  # last two days never read
    )
    is_ = lambda p, c, s: (pl.col("_point") == p) & (pl.col("channel") == c) & (t == at(s))  # noqa: E731
    stuck = (
        (pl.col("_point") == "PM-012")
        & (pl.col("channel") == "kwh_del")
        & t.is_between(at("2026-04-20 09:15"), at("2026-04-20 13:00"))
    )  # 16 intervals at one value
    return readings.filter(~drop).with_columns(
        value=(
            pl.when(stuck)
            .then(pl.lit(37.5))
            .when(is_("PM-015", "kwh_del", "2026-04-08 14:00"))
            .then(pl.col("value") * 50)
            .when(is_("PM-016", "kvarh_del", "2026-04-18 03:00"))
            .then(pl.lit(-3.2))
            .otherwise(pl.col("value"))
        )
    )


_RESEND = """device_id,interval_end,channel,value
DEV-10001,2026-04-25 10:00,kwh_del,{same}
DEV-10006,2026-04-25 10:00,kwh_del,{other}
DEV-99999,2026-04-25 10:00,kwh_del,12.5
DEV-99999,2026-04-25 10:15,kwh_del,12.7
DEV-10011,2026-04-25 10:07,kwh_del,8.1
DEV-10016,2026-04-25 10:30,kwh_del,n/a
DEV-10021,2026-05-01 00:15,kwh_del,9.9
"""


def generate(out_dir: Path) -> Path:
    """Write `metering_points.csv` and `readings/` under out_dir; return out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reg = registry()
    reg.write_csv(out_dir / "metering_points.csv", date_format="%Y-%m-%d")
    rng = np.random.default_rng(20260401)
    market = reg.filter(pl.col("participant").is_in([p for p, _ in PARTICIPANTS]))
    for month in MONTHS:
        readings = pl.concat([_defects(month, _series(month, market, rng)), _frontier(month)])
        folder = out_dir / "readings" / month
        folder.mkdir(parents=True, exist_ok=True)
        for participant in [p for p, _ in PARTICIPANTS] + sorted({d for _, d, _, _ in FRONTIER}):
            part = readings.filter(pl.col("_participant") == participant).drop("_point", "_participant")
            part.write_parquet(
                folder / f"{participant}_{month}.parquet", compression="zstd", compression_level=19, statistics=False
            )
        if month == "2026-04":
            value = lambda device, channel, when: readings.filter(  # noqa: E731
                (pl.col("device_id") == device)
                & (pl.col("channel") == channel)
                & (pl.col("interval_end") == datetime.strptime(when, "%Y-%m-%d %H:%M"))
            )["value"][0]
            resend = folder / "resend"
            resend.mkdir(exist_ok=True)
            (resend / "COMLUZ_2026-04-25_resend.csv").write_text(
                _RESEND.format(
                    same=value("DEV-10001", "kwh_del", "2026-04-25 10:00"),
                    other=round(value("DEV-10006", "kwh_del", "2026-04-25 10:00") + 4.0, 2),
                ),
                encoding="utf-8",
            )
    return out_dir
