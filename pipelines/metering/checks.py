"""Great Expectations on an ingested month.

The suite runs on an aggregate with one row per point and channel (about 8,000 rows for 2,000 points),
not on the ~24 million readings: handing GX 24M rows means a pandas copy of them and per-row checks
in Python, seconds to tens of seconds and gigabytes, while every property worth asserting about the
rows is preserved by the aggregate (key uniqueness -> received <= expected and count == distinct
intervals; ranges -> min/max of value and interval index; types -> the aggregate's column types come
from the typed readings). Per-row problems are already handled where they are cheap: quarantine
(unparsable values) and VEE (negative, implausible, spikes...)."""

from __future__ import annotations

import polars as pl

from pipelines.metering import keys
from pipelines.periods import Month
from pipelines.quality import CheckResult, run_suite


def month_frame(
    stats: pl.DataFrame, completeness: pl.DataFrame, hourly: pl.DataFrame, points: pl.DataFrame
) -> pl.DataFrame:
    """One row per active point and channel: completeness plus the range of its readings and hours.
    `stats` is vee.series_stats of the month's readings."""
    stats = stats.select(
        point_idx=keys.point_index(pl.col("series")),
        channel=keys.channel_name(keys.channel_index(pl.col("series"))),
        rows="rows",
        distinct_intervals="distinct_intervals",
        first_i="first",
        last_i="last",
        min_value="min_value",
        max_value="max_value",
    )
    hours = (
        hourly.group_by("point_id", "channel")
        .agg(hours=pl.len(), hour_value=pl.col("value").sum())
        .with_columns(pl.col("point_id", "channel").cast(pl.String))
    )
    return (
        completeness.join(points.select("point_id", "point_idx"), on="point_id")
        .join(stats, on=["point_idx", "channel"], how="left")
        .join(hours, on=["point_id", "channel"], how="left")
        .with_columns(
            pl.col("rows", "distinct_intervals").fill_null(0),
            pl.col("hours").fill_null(0).cast(pl.Int64),
            duplicated_keys=(pl.col("rows").fill_null(0) - pl.col("distinct_intervals").fill_null(0)).cast(pl.Int64),
        )
        .drop("point_idx")
    )


def check_month_frame(frame: pl.DataFrame, month: Month) -> list[CheckResult]:
    """The `metering_month` suite on a month_frame (built while the month's frames are at hand; GX may
    run later, once its import is done)."""
    intervals = month.intervals
    return run_suite(
        "metering_month",
        f"readings {month} (per point and channel)",
        frame,
        {"n_intervals": intervals, "n_hours": intervals // keys.INTERVALS_PER_HOUR},
    )
