"""Estimating the hourly energy of points delivered late or never (NCC-14 numeral 14.10).

- consumption: the previous month's metered value at the same day-of-month and hour, plus 10%; when
  the previous month has no such day (31 March -> February), its last day. The metered value is the
  `meter_hourly` row with channel kwh_del (energy the point takes from the grid).
- generation: the dispatch centre's record for the same hour (`dispatch_records`), minus 5%.
An hour with no basis gets no row: the point's `estimation` text says how many hours could not be
estimated and why. Nothing is invented."""

from __future__ import annotations

import logging

import polars as pl

from pipelines import warehouse
from pipelines.periods import Month

logger = logging.getLogger(__name__)

CONSUMPTION_UPLIFT = 1.10  # 14.10: previous-month readings + 10%
GENERATION_FACTOR = 0.95  # 14.10: dispatch records - 5%
CONSUMPTION_CHANNEL = "kwh_del"

_SHORT = {"consumption": f"previous-month {CONSUMPTION_CHANNEL} +10%", "generation": "dispatch records -5%"}
ESTIMATE_COLUMNS = ["month", "point_id", "hour", "kwh", "method", "basis_hour", "basis_kwh"]


def point_hours(registry: pl.DataFrame, point_ids: list[str], month: Month) -> pl.DataFrame:
    """(point_id, hour) for every hour of the month in which the point is active (whole days)."""
    first, last = month.first_day, month.last_day
    return (
        registry.filter(pl.col("point_id").is_in(point_ids))
        .select(
            "point_id",
            pl.max_horizontal(pl.col("valid_from"), pl.lit(first)).alias("_from"),
            pl.min_horizontal(pl.col("valid_to").fill_null(last), pl.lit(last)).alias("_to"),
        )
        .filter(pl.col("_from") <= pl.col("_to"))
        .select(
            "point_id",
            pl.datetime_ranges(
                pl.col("_from").cast(pl.Datetime("us")),
                pl.col("_to").cast(pl.Datetime("us")) + pl.duration(hours=23),
                interval="1h",
            ).alias("hour"),
        )
        .explode("hour")
        .unique(["point_id", "hour"])
        .sort("point_id", "hour")
    )


def previous_month_hour(month: Month) -> pl.Expr:
    """Same day-of-month and hour in the previous month, or that month's last day."""
    previous = month.previous
    return pl.datetime(
        previous.first_day.year,
        previous.first_day.month,
        pl.min_horizontal(pl.col("hour").dt.day(), pl.lit(previous.last_day.day)),
        pl.col("hour").dt.hour(),
    ).cast(pl.Datetime("us"))


def read_meter_hourly(
    point_ids: list[str], month: Month, source: warehouse.Reader | warehouse.Where
) -> tuple[pl.DataFrame | None, str]:
    """The previous month's kwh_del hours of these points from the warehouse (a run's reader, or a
    catalog path), or (None, why not)."""
    previous = month.previous
    start, end = previous.bounds
    with warehouse.reading(source) as src:
        if not src.found:
            return _no_basis(f"no warehouse at {src.catalog}, so no meter_hourly for {previous}")
        if not src.has("meter_hourly"):
            return _no_basis(
                f"the warehouse has no meter_hourly table (run `mayorista meters ingest --month {previous}`)"
            )
        rows = src.frame(
            "SELECT point_id, CAST(hour AS TIMESTAMP) AS hour, value FROM {h} "
            "WHERE channel = ? AND hour >= ? AND hour < ? AND list_contains(?, point_id)",
            [CONSUMPTION_CHANNEL, start, end, point_ids],
            h="meter_hourly",
        )
    duplicated = rows.filter(pl.struct("point_id", "hour").is_duplicated())
    if duplicated.height:
        example = duplicated.row(0, named=True)
        return _no_basis(
            f"meter_hourly has {duplicated.height} duplicated {CONSUMPTION_CHANNEL} rows for {previous} "
            f"(e.g. {example['point_id']} {example['hour']}): not used"
        )
    logger.info(
        "consumption basis: %d %s hour(s) of meter_hourly %s for %d point(s)",
        rows.height,
        CONSUMPTION_CHANNEL,
        previous,
        rows["point_id"].n_unique(),
    )
    return rows.with_columns(pl.col("hour").cast(pl.Datetime("us"))), ""


def _no_basis(why: str) -> tuple[None, str]:
    # INFO: the note reaches each point's `estimation` text; the log says once why none was estimated
    logger.info("no basis for consumption estimates: %s", why)
    return None, why


def _with_basis(hours: pl.DataFrame, basis: pl.DataFrame | None, value: str) -> pl.DataFrame:
    """`basis_kwh` for each (point_id, basis_hour): the basis frame's `value`, null where it has none."""
    if basis is None:
        return hours.with_columns(basis_kwh=pl.lit(None, pl.Float64))
    return hours.join(
        basis.rename({"hour": "basis_hour", value: "basis_kwh"}), on=["point_id", "basis_hour"], how="left"
    )


def estimate(
    points: pl.DataFrame,
    registry: pl.DataFrame,
    month: Month,
    *,
    meter_hourly: pl.DataFrame | None,
    meter_hourly_note: str,
    dispatch: pl.DataFrame | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(estimated_hourly rows, per-point estimation text) for `points` (point_id, kind) late or missing."""
    points = points.unique("point_id").select("point_id", "kind")
    hours = point_hours(registry, points["point_id"].to_list(), month).join(points, on="point_id")
    previous = month.previous

    consumption = _with_basis(
        hours.filter(pl.col("kind") == "consumption").with_columns(basis_hour=previous_month_hour(month)),
        meter_hourly,
        "value",
    ).with_columns(
        kwh=pl.col("basis_kwh") * CONSUMPTION_UPLIFT,
        method=pl.lit(
            f"consumption: meter_hourly {CONSUMPTION_CHANNEL} of {previous}, same day and hour "
            f"(last day if {previous} is shorter), +10% (NCC-14 14.10)"
        ),
    )

    generation = _with_basis(
        hours.filter(pl.col("kind") == "generation").with_columns(basis_hour=pl.col("hour")), dispatch, "kwh"
    ).with_columns(
        kwh=pl.col("basis_kwh") * GENERATION_FACTOR,
        method=pl.lit("generation: dispatch_records for the same hour, -5% (NCC-14 14.10)"),
    )

    every = pl.concat([consumption, generation], how="diagonal_relaxed")
    estimated = (
        every.filter(pl.col("kwh").is_not_null()).with_columns(month=pl.lit(month.label)).select(ESTIMATE_COLUMNS)
    )
    missing_basis = {
        "consumption": meter_hourly_note
        or f"meter_hourly has no {CONSUMPTION_CHANNEL} value for those hours of {previous}",
        "generation": (
            "no dispatch_records file was given"
            if dispatch is None
            else f"dispatch_records has no value for those hours of {month}"
        ),
    }
    notes = (
        points.join(
            every.group_by("point_id").agg(hours=pl.len(), estimated=pl.col("kwh").is_not_null().sum()),
            on="point_id",
            how="left",
        )
        .with_columns(pl.col("hours", "estimated").fill_null(0))
        .with_columns(
            estimation=pl.when(~pl.col("kind").is_in(["consumption", "generation"]))
            .then(pl.format("not estimated: kind '{}' is neither consumption nor generation", pl.col("kind")))
            .when(pl.col("hours") == 0)
            .then(pl.lit("not estimated: the point has no active hour in the month"))
            .when(pl.col("estimated") == pl.col("hours"))
            .then(
                pl.format(
                    "estimated all {} hours ({})", pl.col("hours"), pl.col("kind").replace_strict(_SHORT, default="")
                )
            )
            .otherwise(
                pl.format(
                    "{} of {} hours estimated; {} hours not estimable: {}",
                    pl.col("estimated"),
                    pl.col("hours"),
                    pl.col("hours") - pl.col("estimated"),
                    pl.col("kind").replace_strict(missing_basis, default=""),
                )
            )
        )
        .with_columns(
            # the same note without words, for the letters (pipelines/reports/evidence.py): why an hour
            # could not be estimated is said by its kind (the operational detail, such as a warehouse
            # path, stays in the English `estimation` text)
            estimation_key=pl.when(~pl.col("kind").is_in(["consumption", "generation"]))
            .then(pl.lit("estimation.not_a_kind"))
            .when(pl.col("hours") == 0)
            .then(pl.lit("estimation.no_hours"))
            .when(pl.col("estimated") == pl.col("hours"))
            .then(pl.lit("estimation.all"))
            .otherwise(pl.lit("estimation.partial")),
            estimation_args=pl.struct(
                point_kind="kind",
                hours="hours",
                estimated="estimated",
                unestimable=pl.col("hours") - pl.col("estimated"),
                basis=pl.struct(
                    key=pl.concat_str(pl.lit("estimation.basis_"), pl.col("kind")),
                    previous=pl.lit(previous.label),
                    channel=pl.lit(CONSUMPTION_CHANNEL),
                ),
                why=pl.struct(
                    key=pl.when(pl.col("kind") == "consumption")
                    .then(pl.lit("estimation.why_consumption"))
                    .otherwise(
                        pl.lit("estimation.why_no_dispatch" if dispatch is None else "estimation.why_generation")
                    ),
                    previous=pl.lit(previous.label),
                    month=pl.lit(month.label),
                    channel=pl.lit(CONSUMPTION_CHANNEL),
                ),
            ).struct.json_encode(),
        )
        .select("point_id", "estimation", "estimation_key", "estimation_args")
    )
    logger.info(
        "estimated %d of %d hour(s) of %d late or missing point(s) (%d consumption, %d generation)",
        estimated.height,
        every.height,
        points.height,
        points.filter(pl.col("kind") == "consumption").height,
        points.filter(pl.col("kind") == "generation").height,
    )
    return estimated.sort("point_id", "hour"), notes
