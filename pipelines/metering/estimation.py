"""Estimating missing 15-minute intervals (the E of VEE), with the method recorded per interval.

Anchors (../shared/domain/mdm.md): Itron IEE and Oracle Utilities MDM interpolate short gaps and
average like days for longer ones; Itron averages the three nearest like days, holidays treated as
Sundays, and never uses an estimated or flagged value as a basis.

  linear    a gap of at most `max_gap_intervals` (8 = 2 h) between two real readings that carry no
            finding: the straight line between them.
  like_day  any other gap of at most `like_day_max_intervals` (672 = 7 days): per interval, the mean of
            the same interval-of-day on the `like_day_days` (3) most recent days of the same kind
            (Monday-Friday business day; Saturday; Sunday or holiday) within the previous
            `like_day_window_days` (28) days whose reading there is real and carries no finding.
            Holidays: Guatemala's public holidays (the `holidays` package, which includes Holy Week's
            Thursday, Friday and Saturday) and the administrator's non-working days
            (config/nonworking_days.csv), as in pipelines/business_days.py.

Estimates only ever fill missing keys of an active point (never a real reading), and are built only
from real readings without findings (never from an estimate: the history holds real readings only).
What cannot be estimated stays missing, and the gap finding says how much and why."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.business_days import nonworking_days, public_holidays
from pipelines.metering import keys, vee
from pipelines.periods import Month

METHODS = ("linear", "like_day")
DAY_KINDS = ("business", "saturday", "sunday_or_holiday")
ESTIMATE_SCHEMA = {"k": pl.Int64, "v": pl.Float64, "method": pl.String}
_PER_DAY = keys.INTERVALS_PER_DAY
_SERIES = keys.series()
_I = keys.interval_index()


def day_kinds(first: date, last: date, config_dir: Path | None = None) -> pl.DataFrame:
    """(date, kind) for every day first..last: sunday_or_holiday for Sundays, public holidays and the
    administrator's non-working days (a holiday on a Saturday, such as Holy Saturday, is a holiday);
    saturday; else business."""
    closed = pl.concat(
        [public_holidays(first.year, last.year).select("date"), nonworking_days(config_dir).select("date")]
    ).unique()
    weekday = pl.col("date").dt.weekday()
    return (
        pl.DataFrame({"date": pl.date_range(first, last, eager=True)})
        .join(closed.with_columns(_closed=pl.lit(True)), on="date", how="left")
        .select(
            "date",
            kind=pl.when(pl.col("_closed").is_not_null() | (weekday == 7))
            .then(pl.lit(DAY_KINDS[2]))
            .when(weekday == 6)
            .then(pl.lit(DAY_KINDS[1]))
            .otherwise(pl.lit(DAY_KINDS[0])),
        )
    )


def month_day_kinds(
    month_start: datetime, month_end: datetime, t: vee.Thresholds, config_dir: Path | None = None
) -> pl.DataFrame:
    """day_kinds covering the like-day window before the month and the month itself."""
    return day_kinds(
        (month_start - timedelta(days=t.like_day_window_days)).date(),
        Month.containing(month_start).last_day,
        config_dir,
    )


def linear(runs: pl.DataFrame) -> pl.DataFrame:
    """(k, v, method) for gap runs (series, from_i, to_i, length, va, vb) with real neighbours va, vb."""
    return vee.linear_fill(runs).with_columns(method=pl.lit("linear")).cast(ESTIMATE_SCHEMA)


def like_day(
    targets: pl.DataFrame, history: pl.DataFrame, month_start: datetime, kinds: pl.DataFrame, t: vee.Thresholds
) -> pl.DataFrame:
    """(k, v, method) for the target intervals (k) that have t.like_day_days like days; the others are
    left out (the caller reports them).

    `history` (series, interval_end, v, flagged) as for vee.vs_history: real readings, one row per series
    and interval, covering [month_start - like_day_window_days, month end), flagged = has a finding.
    `kinds` (date, kind) covers the same days (month_day_kinds).

    Day d of interval i is (i - 1) // 96 and its interval-of-day q = (i - 1) % 96 (interval i ends at
    month start + 15 min * i). The candidate days of each target day (same kind, 1..window days
    before, ranked most recent first) are a tiny frame; every target interval is joined with them and
    then with the good history on one integer key, and the first like_day_days found are averaged."""
    if targets.height == 0:
        return pl.DataFrame(schema=ESTIMATE_SCHEMA)
    day0 = month_start.date()
    days = kinds.select(d=(pl.col("date") - pl.lit(day0)).dt.total_days(), kind="kind")
    target_days = targets.select(d=keys.day_index(_I)).unique().join(days, on="d", how="left")
    missing_kind = target_days.filter(pl.col("kind").is_null())
    if missing_kind.height:
        raise ValueError(f"day kinds do not cover day {missing_kind['d'][0]} of the month starting {day0}")
    candidates = (
        target_days.join(days.rename({"d": "cd"}), on="kind")
        .filter((pl.col("cd") < pl.col("d")) & (pl.col("cd") >= pl.col("d") - t.like_day_window_days))
        .select("d", "cd", rank=pl.col("cd").rank("ordinal", descending=True).over("d"))
    )
    good = vee.good_history(history, month_start)
    # source key: same series, candidate day cd, same interval-of-day q -> j = cd * 96 + q + 1
    found = (
        targets.select("k", series=_SERIES, d=keys.day_index(_I), q=keys.interval_of_day(_I))
        .join(candidates, on="d")
        .select(
            "k",
            "rank",
            hk=pl.col("series") * vee.HISTORY_SPAN + pl.col("cd") * _PER_DAY + pl.col("q") + 1 + vee.HISTORY_OFFSET,
        )
        .join(good, on="hk", how="inner")
        .sort("k", "rank")
        .group_by("k", maintain_order=True)
        .agg(v=pl.col("v").head(t.like_day_days).mean(), n=pl.col("v").head(t.like_day_days).len())
    )
    return (
        found.filter(pl.col("n") == t.like_day_days).select("k", "v", method=pl.lit("like_day")).cast(ESTIMATE_SCHEMA)
    )


def estimate(
    readings: pl.DataFrame,
    ranges: pl.DataFrame,
    t: vee.Thresholds,
    *,
    month_start: datetime,
    history: pl.DataFrame | None = None,
    kinds: pl.DataFrame | None = None,
    flagged: pl.DataFrame | None = None,
    stats: pl.DataFrame | None = None,
    runs: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(gap findings k, rule, detail, value, last_i; estimates k, v, method sorted by k).

    readings: the month's (k, v), sorted, one row per key. ranges: (point_idx, first_i, last_i) active
    intervals. flagged: (k) of readings with a finding (vee findings of the month): such a reading is no
    neighbour for `linear`. history / kinds: as for `like_day`; without them no gap is estimated by
    like_day (the finding says so). stats: vee.series_stats(readings), runs: vee.gap_runs(readings, ranges),
    when already computed."""
    runs = (runs if runs is not None else vee.gap_runs(readings, ranges, stats)).with_row_index("run")
    bad = flagged.select("k").unique() if flagged is not None else pl.DataFrame(schema={"k": pl.Int64})
    bad = bad.with_columns(_bad=pl.lit(True))
    base = keys.encode(pl.col("series"), 0)
    runs = (
        runs.join(
            bad.rename({"k": "_kb", "_bad": "bad_before"}),
            left_on=base + pl.col("from_i") - 1,
            right_on="_kb",
            how="left",
            maintain_order="left",
        )
        .join(
            bad.rename({"k": "_ka", "_bad": "bad_after"}),
            left_on=base + pl.col("to_i") + 1,
            right_on="_ka",
            how="left",
            maintain_order="left",
        )
        .with_columns(flagged_neighbour=pl.col("bad_before").fill_null(False) | pl.col("bad_after").fill_null(False))
    )
    use_linear = pl.col("interior") & ~pl.col("flagged_neighbour") & (pl.col("length") <= t.max_gap_intervals)
    can_like = history is not None and kinds is not None
    use_like = ~use_linear & (pl.col("length") <= t.like_day_max_intervals) & pl.lit(can_like)
    runs = runs.with_columns(method=pl.when(use_linear).then(pl.lit("linear")).when(use_like).then(pl.lit("like_day")))

    by_linear = linear(runs.filter(pl.col("method") == "linear"))
    targets = (
        runs.filter(pl.col("method") == "like_day")
        .select("run", k=base + pl.int_ranges("from_i", pl.col("to_i") + 1))
        .explode("k")
    )
    by_like = (
        like_day(targets.select("k"), history, month_start, kinds, t)
        if can_like and targets.height
        else pl.DataFrame(schema=ESTIMATE_SCHEMA)
    )
    filled = targets.join(by_like.select("k"), on="k", how="semi").group_by("run").agg(filled=pl.len())
    runs = runs.join(filled, on="run", how="left").with_columns(
        filled=pl.when(pl.col("method") == "linear")
        .then(pl.col("length"))
        .otherwise(pl.col("filled").fill_null(0))
        .cast(pl.Int64)
    )

    lacking = (
        f"fewer than {t.like_day_days} like days with a real reading without findings in the previous "
        f"{t.like_day_window_days} days"
    )
    why_not = (
        pl.when(pl.col("length") > t.like_day_max_intervals)
        .then(pl.lit(f"longer than the like_day maximum of {t.like_day_max_intervals} intervals"))
        .when(pl.lit(not can_like))
        .then(pl.lit("no history for like_day"))
        .otherwise(pl.lit(lacking))
    )
    detail = (
        pl.when(pl.col("method") == "linear")
        .then(pl.format("{} interval(s) missing; estimated by linear interpolation", "length"))
        .when(pl.col("filled") == pl.col("length"))
        .then(
            pl.format(
                "{} interval(s) missing; estimated by like_day (mean of the same interval on {} like days)",
                "length",
                pl.lit(t.like_day_days),
            )
        )
        .when(pl.col("filled") > 0)
        .then(
            pl.format(
                "{} interval(s) missing; {} estimated by like_day, {} left missing ({})",
                "length",
                "filled",
                pl.col("length") - pl.col("filled"),
                why_not,
            )
        )
        .otherwise(pl.format("{} interval(s) missing (not estimated: {})", "length", why_not))
    )
    findings = runs.sort("series", "from_i").select(
        k=base + pl.col("from_i"), rule=pl.lit("gap"), detail=detail, value=pl.lit(None, pl.Float64), last_i="to_i"
    )
    estimates = pl.concat([by_linear, by_like]).sort("k")
    return findings, estimates
