"""Direct@mm delivery after a VPN change (NCC-14 numeral 14.10; guide 2.2.2 rule 6b).

Supply month = month of executed_on. Required points = every metering point of the participant
active at any time in the supply month. Deadline = end of the day notified_on + 2 calendar days.
A point counts by its FIRST delivery for the supply month: on time if received before the deadline
ends, late if after, missing if never. Deliveries of points that are not required (another
participant's, or not active that month) or unknown to the registry are reported, not counted."""

from __future__ import annotations

import polars as pl

from pipelines.delivery.rules import args, date_fact, date_problem, fact
from pipelines.metering.registry import active_in
from pipelines.periods import Month

DEADLINE_CALENDAR_DAYS = 2  # numeral 14.10: "2 días calendario"

POINT_COLUMNS = [
    "month",
    "change_id",
    "participant",
    "point_id",
    "kind",
    "status",
    "received_at",
    "deliveries",
    "deadline",
]
COMPLIANCE_COLUMNS = [
    "month",
    "change_id",
    "participant",
    "supply_month",
    "notified_on",
    "deadline",
    "required_points",
    "on_time_points",
    "late_points",
    "missing_points",
    "compliant",
]


def required_points(registry: pl.DataFrame, month: Month) -> pl.DataFrame:
    """(participant, point_id, kind) active at any time in the month; kind from the latest row."""
    return (
        active_in(registry, month.first_day, month.last_day)
        .sort("valid_from")
        .group_by("participant", "point_id")
        .agg(pl.col("kind").last())
        .sort("participant", "point_id")
    )


def first_deliveries(deliveries: pl.DataFrame, month: Month) -> pl.DataFrame:
    """One row per (participant, point) delivered for the supply month: first received_at, count."""
    return (
        deliveries.filter(pl.col("supply_month") == month.label)
        .group_by("participant", "point_id")
        .agg(pl.col("received_at").min(), pl.len().cast(pl.Int64).alias("deliveries"))
    )


def _judgeable(changes: pl.DataFrame, participants: list[str]) -> pl.Expr:
    """Why a change's delivery cannot be judged, else null."""
    return (
        pl.when(pl.col("participant").is_null())
        .then(pl.lit("no participant recorded"))
        .when(~pl.col("participant").is_in(participants))
        .then(
            pl.format(
                "participant {} is not in metering_points: its required points are unknown", pl.col("participant")
            )
        )
        .when(pl.col("executed_on").is_null())
        .then(
            pl.format(
                "{}: the change was not carried out, so there is no supply month to deliver",
                date_problem("executed_on"),
            )
        )
        .when(pl.col("notified_on").is_null())
        .then(pl.format("{}: the 2-day delivery period has not started", date_problem("notified_on")))
        .when(pl.col("notified_on") < pl.col("executed_on"))
        .then(
            pl.format(
                "notified on {} before the change was executed on {}: dates inconsistent",
                pl.col("notified_on"),
                pl.col("executed_on"),
            )
        )
    )


def _judgeable_words(participants: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """_judgeable without words: (detail_key, the problem's fact), null when the change can be judged."""
    unknown = pl.col("participant").is_null() | ~pl.col("participant").is_in(participants)
    key = (
        pl.when(unknown)
        .then(pl.lit("delivery.unjudged"))
        .when(pl.col("executed_on").is_null())
        .then(pl.lit("delivery.not_executed"))
        .when(pl.col("notified_on").is_null())
        .then(pl.lit("delivery.not_notified"))
        .when(pl.col("notified_on") < pl.col("executed_on"))
        .then(pl.lit("delivery.inconsistent"))
    )
    problem = (
        pl.when(pl.col("participant").is_null())
        .then(fact("no_participant"))
        .when(~pl.col("participant").is_in(participants))
        .then(fact("unknown_participant", value=pl.col("participant")))
        .when(pl.col("executed_on").is_null())
        .then(date_fact("executed_on"))
        .when(pl.col("notified_on").is_null())
        .then(date_fact("notified_on"))
    )
    return key, problem


def assess(
    changes: pl.DataFrame, registry: pl.DataFrame, deliveries: pl.DataFrame, month: Month
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(delivery_points, delivery_compliance, review rows for the `delivery` rule) for the month's changes."""
    participants = registry["participant"].unique().to_list()
    required = required_points(registry, month)
    delivered = first_deliveries(deliveries, month)
    problem_key, problem_fact = _judgeable_words(participants)
    judged = changes.with_columns(
        _problem=_judgeable(changes, participants),
        _problem_key=problem_key,
        _problem_fact=problem_fact,
        deadline=(pl.col("notified_on") + pl.duration(days=DEADLINE_CALENDAR_DAYS)),
        supply_month=pl.col("executed_on").dt.strftime("%Y-%m"),
    ).with_columns(deadline=pl.when(pl.col("_problem").is_null()).then(pl.col("deadline")))
    # a change never carried out has no supply month, hence no points to list
    heads = judged.filter(pl.col("executed_on").is_not_null()).select(
        "change_id", "participant", "deadline", "_problem"
    )

    # the deadline ends at midnight after its day: received strictly before that is on time
    deadline_end = pl.col("deadline").cast(pl.Datetime("us")) + pl.duration(days=1)
    points = (
        heads.join(required, on="participant", how="inner")
        .join(delivered, on=["participant", "point_id"], how="left")
        .with_columns(
            status=pl.when(pl.col("_problem").is_not_null())
            .then(pl.lit("not_judged"))
            .when(pl.col("received_at").is_null())
            .then(pl.lit("missing"))
            .when(pl.col("received_at") < deadline_end)
            .then(pl.lit("on_time"))
            .otherwise(pl.lit("late")),
            deliveries=pl.col("deliveries").fill_null(0),
        )
    )
    known_points = registry["point_id"].unique().to_list()
    extra = (
        heads.join(delivered, on="participant", how="inner")
        .join(required, on=["participant", "point_id"], how="anti")
        .join(registry.select("point_id", "kind").unique("point_id", keep="last"), on="point_id", how="left")
        .with_columns(
            status=pl.when(pl.col("point_id").is_in(known_points))
            .then(pl.lit("not_required"))
            .otherwise(pl.lit("unknown_point"))
        )
    )
    points = pl.concat([points, extra], how="diagonal_relaxed").with_columns(month=pl.lit(month.label))
    points = points.select(POINT_COLUMNS).sort("change_id", "point_id")

    counts = points.group_by("change_id").agg(
        required_points=pl.col("status").is_in(["on_time", "late", "missing", "not_judged"]).sum(),
        on_time_points=(pl.col("status") == "on_time").sum(),
        late_points=(pl.col("status") == "late").sum(),
        missing_points=(pl.col("status") == "missing").sum(),
    )
    compliance = (
        judged.join(counts, on="change_id", how="left")
        .with_columns(
            pl.col(c).fill_null(0).cast(pl.Int64)
            for c in ("required_points", "on_time_points", "late_points", "missing_points")
        )
        .with_columns(
            # a change that cannot be judged has no counts to report: nulls, not zeros
            *[
                pl.when(pl.col("_problem").is_null()).then(pl.col(c)).alias(c)
                for c in ("on_time_points", "late_points", "missing_points")
            ],
            _no_points=pl.col("_problem").is_null() & (pl.col("required_points") == 0),
        )
        .with_columns(
            compliant=pl.col("_problem").is_null()
            & ~pl.col("_no_points")
            & (pl.col("on_time_points") == pl.col("required_points"))
        )
    )
    review = compliance.select(
        "change_id",
        "participant",
        pl.lit("delivery").alias("rule"),
        pl.col("compliant").fill_null(False).alias("ok"),
        pl.when(pl.col("_problem").is_not_null())
        .then(pl.format("{}: delivery cannot be judged", pl.col("_problem")))
        .when(pl.col("_no_points"))
        .then(
            pl.format(
                "participant {} has no metering point active in {}: nothing to judge",
                pl.col("participant"),
                pl.col("supply_month"),
            )
        )
        .otherwise(
            pl.format(
                "notified {}, deadline end of {}: {} required points, {} on time, {} late, {} missing",
                pl.col("notified_on"),
                pl.col("deadline"),
                pl.col("required_points"),
                pl.col("on_time_points"),
                pl.col("late_points"),
                pl.col("missing_points"),
            )
        )
        .alias("detail"),
        pl.when(pl.col("_problem").is_not_null())
        .then(pl.col("_problem_key"))
        .when(pl.col("_no_points"))
        .then(pl.lit("delivery.no_points"))
        .otherwise(pl.lit("delivery.counted"))
        .alias("detail_key"),
        args(
            problem=pl.col("_problem_fact"),
            participant=pl.col("participant"),
            month=pl.col("supply_month"),
            notified=pl.col("notified_on").cast(pl.String),
            executed=pl.col("executed_on").cast(pl.String),
            deadline=pl.col("deadline").cast(pl.String),
            required=pl.col("required_points"),
            on_time=pl.col("on_time_points"),
            late=pl.col("late_points"),
            missing=pl.col("missing_points"),
        ).alias("detail_args"),
        pl.col("_line").alias("line"),
    )
    compliance = (
        compliance.filter(pl.col("executed_on").is_not_null())
        .with_columns(month=pl.lit(month.label))
        .select(COMPLIANCE_COLUMNS)
    )
    return points, compliance, review
