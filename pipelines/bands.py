"""Time bands (bandas horarias, NCC-1): which band an hour belongs to, by its DATE and hour of day.

The bands changed on 2026-05-01, so the calendar is versioned data (`config/bands.csv`): one row per
(regime, band, hour range); `hour_from`..`hour_to` are inclusive hours of day and may wrap past
midnight (valle 22..5). A backfill of an old quarter therefore uses the bands in force at the time."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import polars as pl

from pipelines import config
from pipelines.errors import InputError
from pipelines.inputs import read_table

logger = logging.getLogger(__name__)

BANDS = ("punta", "intermedia", "valle")
_FAR_FUTURE = date(9999, 12, 31)


def calendar_path() -> Path:
    return config.config_dir() / "bands.csv"


def load_calendar(path: Path | None = None) -> pl.DataFrame:
    """One row per (valid_from, valid_to, hour_of_day, band), checked: known bands, and within each
    regime every hour of the day in exactly one band; regimes do not overlap."""
    path = Path(path or calendar_path())
    raw = read_table(
        path.parent,
        path.stem,
        {"valid_from": "date", "valid_to": "date", "band": "str", "hour_from": "int", "hour_to": "int"},
    )
    unknown = raw.filter(~pl.col("band").is_in(BANDS) | pl.col("band").is_null())
    if unknown.height:
        raise InputError(f"{path.name}: unknown band(s) {unknown['band'].to_list()}; allowed: {', '.join(BANDS)}")
    bad_hours = raw.filter(~pl.col("hour_from").is_between(0, 23) | ~pl.col("hour_to").is_between(0, 23))
    if bad_hours.height:
        raise InputError(f"{path.name}: hours must be 0-23, got rows {bad_hours.rows()}")
    expanded = (
        raw.with_columns(
            pl.col("valid_to").fill_null(_FAR_FUTURE),
            hour_of_day=pl.when(pl.col("hour_from") <= pl.col("hour_to"))
            .then(pl.int_ranges(pl.col("hour_from"), pl.col("hour_to") + 1))
            .otherwise(pl.concat_list(pl.int_ranges(pl.col("hour_from"), 24), pl.int_ranges(0, pl.col("hour_to") + 1))),
        )
        .explode("hour_of_day")
        .select("valid_from", "valid_to", pl.col("hour_of_day").cast(pl.Int8), "band")
    )
    per_regime = (
        expanded.group_by("valid_from", "valid_to")
        .agg(n=pl.len(), distinct=pl.col("hour_of_day").n_unique())
        .sort("valid_from")
    )
    wrong = per_regime.filter((pl.col("n") != 24) | (pl.col("distinct") != 24))
    if wrong.height:
        raise InputError(
            f"{path.name}: each regime must put each of the 24 hours in exactly one band; "
            f"regime(s) starting {[str(d) for d in wrong['valid_from']]} do not"
        )
    starts, ends = per_regime["valid_from"].to_list(), per_regime["valid_to"].to_list()
    for prev_end, nxt_start in zip(ends, starts[1:]):
        if nxt_start <= prev_end:
            raise InputError(f"{path.name}: band regimes overlap ({nxt_start} starts before {prev_end} ends)")
    return expanded


def hour_bands(start: datetime, end: datetime, calendar: pl.DataFrame | None = None) -> pl.DataFrame:
    """(hour, band) for every hour in [start, end); an hour with no regime in force is an error."""
    calendar = load_calendar() if calendar is None else calendar
    hours = pl.DataFrame({"hour": pl.datetime_range(start, end, "1h", closed="left", eager=True, time_unit="us")})
    joined = (
        hours.with_columns(day=pl.col("hour").dt.date(), hour_of_day=pl.col("hour").dt.hour().cast(pl.Int8))
        .join(calendar, on="hour_of_day", how="left")
        .filter(pl.col("day").is_between(pl.col("valid_from"), pl.col("valid_to")))
        .select("hour", "band", "valid_from")
    )
    # which regime(s) the period was banded by: a backfill of an old quarter uses the bands of its time
    regimes = ", ".join(str(d) for d in joined["valid_from"].unique().sort())
    logger.info("time bands for %s .. %s: the regime(s) in force from %s", start, end, regimes or "-")
    joined = joined.drop("valid_from")
    if joined.height != hours.height:
        uncovered = hours.join(joined, on="hour", how="anti")
        raise InputError(
            f"band calendar has no band in force for {uncovered.height} hour(s), e.g. {uncovered['hour'][0]}"
        )
    return joined.sort("hour")
