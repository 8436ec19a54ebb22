"""Register reads (`register_reads`, optional) and the VEE `sum_check` (California VEE rules, Oracle
Utilities MDM: the intervals between two register reads must add up to the register's advance).

Input: device_id, read_at (`YYYY-MM-DD HH:MM`, local Guatemala time), channel (kwh_del, kwh_rec,
kvarh_del, kvarh_rec), value (the cumulative register, kWh or kVArh). CSV with a header, or Parquet
with the same stem, read as every other input (pipelines/inputs.py): all text first, then typed
strictly; line numbers as a person sees them (CSV: the header is line 1, so the first row is line 2;
Parquet: the first row is 1).

Every row ends either good or quarantined with its reason (`reason`, null when good):
  missing <column> / unparsable <column>   a blank or a value that does not parse
  unknown channel                           not one of the four channels
  unknown device                            the device is in no registry row valid at read_at
  conflicting reads                         the same device, channel and read_at with different values
  register went backwards                   below the previous good read of the device and channel (a
                                            register rollover or a swapped meter looks the same: a
                                            person must look, nothing is inferred)
Identical repeated reads count once.

sum_check: for two consecutive good reads r1 < r2 of a series, the intervals whose end lies in
(r1, r2] (i.e. i1 < i <= i2 with i = interval index of the month, floored for a read between grid
points) must add up to value2 - value1 within max(tolerance_pct % of the difference, tolerance_min).
A pair with any interval of (i1, i2] missing is skipped and reported (never silently passed); a pair
of which one read falls outside the month is not this month's to check and is reported too."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.errors import InputError
from pipelines.inputs import Schema, check_csv_shape, find_input, parse_columns, scan_file
from pipelines.metering import keys, vee
from pipelines.metering.keys import CHANNELS, DAY_US, INTERVAL_US
from pipelines.periods import Month

STEM = "register_reads"
SCHEMA: Schema = {"device_id": "str", "read_at": "minute", "channel": "str", "value": "float"}
READ_COLUMNS = {
    "line": pl.Int64,
    "device_id": pl.String,
    "read_at": pl.Datetime("us"),
    "channel": pl.String,
    "value": pl.Float64,
    "reason": pl.String,
}
MAPPED_SCHEMA = {"series": pl.Int64, "i": pl.Int64, "read_at": pl.Datetime("us"), "value": pl.Float64, "line": pl.Int64}
SKIPPED_SCHEMA = {
    "series": pl.Int64,
    "from_read": pl.Datetime("us"),
    "to_read": pl.Datetime("us"),
    "from_line": pl.Int64,
    "to_line": pl.Int64,
    "reason": pl.String,
}


def read(input_dir: Path) -> pl.DataFrame | None:
    """The rows of `register_reads.csv|.parquet` (None when the optional file is absent): line,
    device_id, read_at, channel, value (typed; null where they do not parse) and `reason` (why the row
    cannot be used as far as the file alone tells, else null) plus raw_<column> as written."""
    path = find_input(input_dir, STEM)
    if path is None:
        return None
    check_csv_shape(path)
    lf = scan_file(path)
    source = lf.collect_schema()
    missing = [c for c in SCHEMA if c not in source]
    if missing:
        raise InputError(f"{path.name}: missing column(s) {', '.join(missing)}; found {', '.join(source.names())}")
    offset = 2 if path.suffix == ".csv" else 1  # line numbers as a person sees them (CSV header = line 1)
    raw = (
        lf.select(list(SCHEMA))
        .with_row_index("line", offset=offset)
        .with_columns(pl.col("line").cast(pl.Int64), **{f"raw_{c}": pl.col(c).cast(pl.String) for c in SCHEMA})
    )
    typed = parse_columns(raw, SCHEMA, source).collect()
    blank = [
        pl.when(pl.col(f"raw_{c}").str.strip_chars().fill_null("") == "").then(pl.lit(f"missing {c}")) for c in SCHEMA
    ]
    channel = pl.when(pl.col("channel").is_not_null() & ~pl.col("channel").is_in(list(CHANNELS))).then(
        pl.format("unknown channel '{}'", "channel")
    )
    return (
        typed.with_columns(
            reason=pl.concat_str(
                [*blank, pl.when(pl.col("_reason") != "").then(pl.col("_reason")), channel],
                separator="; ",
                ignore_nulls=True,
            )
        )
        .with_columns(reason=pl.when(pl.col("reason") != "").then(pl.col("reason")))
        .drop("_reason")
    )


def validate(reads: pl.DataFrame, registry: pl.DataFrame) -> pl.DataFrame:
    """`reads` (as from `read`) with `reason` completed by the rules that need the registry or other rows:
    unknown device, conflicting reads, register went backwards; identical repeats are dropped (the
    first line kept).

    A device is known at read_at when a registry row of it is valid on read_at's day, or, for a read
    at midnight, on the day that ends then (a month-end read at 00:00 closes the previous day)."""
    at = pl.col("read_at")
    day, day_before = at.dt.date(), (at - pl.duration(minutes=1)).dt.date()
    rows = reads.with_row_index("_r")
    known = (
        rows.filter(pl.col("reason").is_null())
        .select("_r", "device_id", day=day, day_before=day_before)
        .join(registry.select("device_id", "valid_from", "valid_to"), on="device_id")
        .filter(
            pl.any_horizontal(
                (pl.col(d) >= pl.col("valid_from")) & (pl.col("valid_to").is_null() | (pl.col(d) <= pl.col("valid_to")))
                for d in ("day", "day_before")
            )
        )
        .select("_r")
        .unique()
        .with_columns(_known=pl.lit(True))
    )
    rows = rows.join(known, on="_r", how="left", maintain_order="left").with_columns(
        reason=pl.when(pl.col("reason").is_null() & pl.col("_known").is_null())
        .then(pl.format("unknown device '{}' at {}", "device_id", "read_at"))
        .otherwise("reason")
    )
    # repeats of one (device, channel, read_at): identical ones count once, differing ones are all quarantined
    key = ["device_id", "channel", "read_at"]
    good = pl.col("reason").is_null()
    rows = rows.with_columns(
        _values=pl.col("value").n_unique().over(pl.when(good).then(pl.struct(key))),
        _repeat=pl.int_range(pl.len()).over(pl.when(good).then(pl.struct(key))) > 0,
    ).filter(~(good & (pl.col("_values") == 1) & pl.col("_repeat")))
    rows = rows.with_columns(
        reason=pl.when(good & (pl.col("_values") > 1))
        .then(pl.format("conflicting reads of {} {} at {} (different values)", "device_id", "channel", "read_at"))
        .otherwise("reason")
    )
    # a cumulative register never decreases: compare each good read with the previous good one
    ordered = (
        rows.filter(pl.col("reason").is_null())
        .sort("device_id", "channel", "read_at")
        .with_columns(
            _prev=pl.col("value").shift(1).over("device_id", "channel"),
            _prev_at=pl.col("read_at").shift(1).over("device_id", "channel"),
        )
        .filter(pl.col("value") < pl.col("_prev"))
        .select("_r", _back=pl.format("register went backwards: {} after {} at {}", "value", "_prev", "_prev_at"))
    )
    rows = rows.join(ordered, on="_r", how="left", maintain_order="left").with_columns(
        reason=pl.coalesce("reason", "_back")
    )
    return rows.sort("line").select(*READ_COLUMNS, *[c for c in rows.columns if c.startswith("raw_")])


def quarantined(reads: pl.DataFrame) -> pl.DataFrame:
    """The rows that cannot be used, with the reason (line, raw values, reason)."""
    return reads.filter(pl.col("reason").is_not_null())


def to_series(reads: pl.DataFrame, device_days: pl.DataFrame, month: Month) -> pl.DataFrame:
    """The good reads of `month`'s span [month start, month end] (both ends inclusive: a read at the
    first midnight opens the month, one at the last closes it) as (series, i, read_at, value, line):
    i = interval index of read_at, floored (interval i ends at month start + 15 min * i; i = 0 is the
    month start), series = point_idx * 4 + channel.

    `device_days` is registry.device_days(registry, month, points): the point of a device on each day
    of the month (day = 0-based day of the interval's start). A read at midnight takes the device's
    point of the day it closes when the day it opens is not in the month or not the device's."""
    start, end = month.bounds
    us = (pl.col("read_at") - pl.lit(start, pl.Datetime("us"))).dt.total_microseconds()
    good = reads.filter(pl.col("reason").is_null() & pl.col("read_at").is_between(start, end)).with_columns(
        i=us // INTERVAL_US, day=(us // DAY_US).cast(pl.Int32), day_before=((us - 1) // DAY_US).cast(pl.Int32)
    )
    dd = device_days.select("device_id", pl.col("day").cast(pl.Int32), "point_idx")
    return (
        good.join(dd.rename({"point_idx": "_p0"}), on=["device_id", "day"], how="left")
        .join(dd.rename({"day": "day_before", "point_idx": "_p1"}), on=["device_id", "day_before"], how="left")
        .with_columns(point_idx=pl.coalesce("_p0", "_p1"))
        .filter(pl.col("point_idx").is_not_null())
        .join(keys.channel_table(), on="channel")
        .select(
            series=keys.series_of(pl.col("point_idx"), pl.col("ch")),
            i="i",
            read_at="read_at",
            value="value",
            line="line",
        )
        .cast(MAPPED_SCHEMA)
        .sort("series", "read_at")
    )


def sum_check(reads: pl.DataFrame, readings: pl.DataFrame, t: vee.Thresholds) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(sum_check findings k, rule, detail, value; skipped pairs series, from_read, to_read, from_line,
    to_line, reason).

    reads: (series, i, read_at, value, line), good reads of the month (`to_series`); readings: the
    month's (k, v), sorted by k with one row per key. Consecutive reads of a series form a pair; the
    sum over i1 < i <= i2 comes from prefix sums at binary-searched row positions (no group-by of the
    month), and so does the count of intervals present. A finding is keyed at the pair's first
    interval i1 + 1 with value = the interval sum; a pair with an interval missing is skipped."""
    pairs = (
        reads.sort("series", "read_at")
        .with_columns(
            pl.col("i", "value", "read_at", "line").shift(1).over("series").name.prefix("p_"),
        )
        .filter(pl.col("p_i").is_not_null())
    )
    lo = keys.encode(pl.col("series"), pl.col("p_i"))  # intervals strictly after the first read
    hi = keys.encode(pl.col("series"), pl.col("i"))  # up to and including the second
    sorted_keys = readings["k"]
    prefix = pl.concat([pl.Series([0.0]), readings["v"].cum_sum()])
    bounds = pairs.select(lo=lo, hi=hi)
    pos_lo = sorted_keys.search_sorted(bounds["lo"], side="right")
    pos_hi = sorted_keys.search_sorted(bounds["hi"], side="right")
    pairs = pairs.with_columns(
        expected=pl.col("i") - pl.col("p_i"),
        found=(pos_hi - pos_lo).cast(pl.Int64),
        total=prefix.gather(pos_hi) - prefix.gather(pos_lo),
        diff=pl.col("value") - pl.col("p_value"),
    ).with_columns(
        tolerance=pl.max_horizontal(
            pl.col("diff").abs() * t.sum_check_tolerance_pct / 100, pl.lit(t.sum_check_tolerance_min)
        )
    )
    complete = pl.col("found") == pl.col("expected")
    checked = pairs.filter(complete & ((pl.col("total") - pl.col("diff")).abs() > pl.col("tolerance")))
    findings = checked.select(
        k=lo + 1,
        rule=pl.lit("sum_check"),
        detail=pl.format(
            "intervals after the register read {} up to {} add up to {}, the register advanced {} "
            "({} -> {}); tolerance {}",
            "p_read_at",
            "read_at",
            pl.col("total").round(4),
            pl.col("diff").round(4),
            "p_value",
            "value",
            pl.col("tolerance").round(4),
        ),
        value=pl.col("total"),
    ).cast({"k": pl.Int64, "rule": pl.String, "detail": pl.String, "value": pl.Float64})
    skipped = (
        pairs.filter(~complete)
        .select(
            "series",
            from_read="p_read_at",
            to_read="read_at",
            from_line="p_line",
            to_line="line",
            reason=pl.format(
                "sum_check skipped: {} of the {} intervals between the reads are missing",
                pl.col("expected") - pl.col("found"),
                "expected",
            ),
        )
        .cast(SKIPPED_SCHEMA)
    )
    return findings.sort("k"), skipped


def month_sum_check(
    reads: pl.DataFrame, device_days: pl.DataFrame, month: Month, readings: pl.DataFrame, t: vee.Thresholds
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """to_series + sum_check for one month, from validated reads (`validate`) and
    registry.device_days(registry, month, points). Pairs of consecutive good reads of a device and
    channel that reach outside the month (one read in it and the other not, or both around it) cannot
    be checked with one month's intervals: they are reported as skipped too."""
    start, end = month.bounds
    mapped = to_series(reads, device_days, month)
    findings, skipped = sum_check(mapped, readings, t)
    inside = pl.col("read_at").is_between(start, end)
    across = (
        reads.filter(pl.col("reason").is_null())
        .sort("device_id", "channel", "read_at")
        .with_columns(
            p_read_at=pl.col("read_at").shift(1).over("device_id", "channel"),
            p_line=pl.col("line").shift(1).over("device_id", "channel"),
        )
        .filter(
            pl.col("p_read_at").is_not_null()
            & (pl.col("p_read_at") < end)
            & (pl.col("read_at") > start)
            & ~(inside & pl.col("p_read_at").is_between(start, end))
        )
    )
    line_series = mapped.select("line", "series")
    across = (
        across.join(line_series, on="line", how="left")
        .join(line_series.rename({"line": "p_line", "series": "p_series"}), on="p_line", how="left")
        .select(
            series=pl.coalesce("series", "p_series"),
            from_read="p_read_at",
            to_read="read_at",
            from_line="p_line",
            to_line="line",
            reason=pl.format(
                "sum_check not done: the reads {} and {} of {} {} reach outside {}",
                "p_read_at",
                "read_at",
                "device_id",
                "channel",
                pl.lit(month.label),
            ),
        )
        .cast(SKIPPED_SCHEMA)
    )
    return findings, pl.concat([skipped, across]).sort("series", "to_read")
