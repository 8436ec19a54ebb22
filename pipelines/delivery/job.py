"""`mayorista delivery check` and the `vpn_delivery_monthly` DAG: review one month's VPN changes and
the Direct@mm deliveries that follow them, estimate what came late or never (14.10), write the
per-participant reports, and publish everything for the month in ONE warehouse transaction."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from upath import UPath

from pipelines import lake, landing_zone, quality, warehouse
from pipelines import run as runs
from pipelines.business_days import BusinessCalendar
from pipelines.delivery import compliance, estimation, rules, sources
from pipelines.errors import InputError
from pipelines.inputs import Source, find_input
from pipelines.metering.registry import load_registry
from pipelines.periods import Month
from pipelines.warehouse import registry as table_registry  # not the metering points registry

logger = logging.getLogger(__name__)

PIPELINE = "delivery"
# the published tables, typed as the registry declares them so an empty first month cannot create a
# column of type null (name -> columns: kept for the tests and reports that build such frames)
SCHEMAS: dict[str, dict[str, pl.DataType]] = {t.name: t.schema for t in table_registry.of(PIPELINE)}
_DATE_COLUMNS = (
    "letter_date",
    "proposed_date",
    "medicion_approved_on",
    "tecnologia_approved_on",
    "executed_on",
    "notified_on",
)


@dataclass
class DeliveryCheck:
    month: str  # the label: what is stored, printed and handed to the letters
    run_id: str
    review: pl.DataFrame
    compliance: pl.DataFrame
    points: pl.DataFrame
    estimated: pl.DataFrame
    unreadable: pl.DataFrame
    validation: list[quality.CheckResult]
    changes: pl.DataFrame | None = None  # vpn_changes: the month's changes with their dates
    reports: dict[str, UPath] = field(default_factory=dict)
    summary: str = ""
    snapshot_id: int | None = None


@dataclass(frozen=True)
class Judgement:
    changes: pl.DataFrame  # the month's changes with their calendar dates (effective date, notice due...)
    unplaced: pl.DataFrame  # change rows no month can claim (unusable executed/proposed date)
    review: pl.DataFrame  # vpn_change_review
    points: pl.DataFrame  # delivery_points (without estimation)
    compliance: pl.DataFrame  # delivery_compliance


def judge(
    month: Month,
    registry: pl.DataFrame,
    changes: pl.DataFrame,
    deliveries: pl.DataFrame,
    config_dir: Path | None = None,
    *,
    completeness: pl.DataFrame | None = None,
    completeness_note: str | None = None,
) -> Judgement:
    """Every rule for the changes the run for `month` reviews (changes as read by sources, with raw text).

    `completeness`: meter_completeness rows of the month (`read_completeness`) for rule 6(a); None when
    they could not be read (`completeness_note` says why): the rule then fails with that reason."""
    of_month, unplaced = rules.place(changes, month)
    # a fixed window around the month: letters and approvals come weeks before a change, and a typo
    # such as 2062 must show up as a finding rather than stretch the calendar
    year = month.first_day.year
    calendar = BusinessCalendar.for_years(year - 2, year + 1, config_dir)
    of_month = rules.with_calendar_dates(of_month, calendar)
    points, compliant, delivery_review = compliance.assess(of_month, registry, deliveries, month)
    interrogated = rules.interrogation(of_month, registry, completeness, completeness_note)
    review = pl.concat([rules.review(of_month, calendar), interrogated, delivery_review])
    review = (
        review.with_columns(
            month=pl.lit(month.label),
            _order=pl.col("rule").replace_strict(
                {"notice": 0, "metering_period": 1, "approvals": 2, "interrogation": 3, "delivery": 4},
                return_dtype=pl.Int64,
            ),
        )
        .sort("change_id", "_order")
        .select(rules.REVIEW_COLUMNS)
    )
    return Judgement(of_month, unplaced, review, points, compliant)


def check_month(
    month: Month | str,
    input_dir: Path,
    *,
    warehouse: warehouse.Where = None,
    lake_root: str | Path | None = None,
    run_id: str | None = None,
    config_dir: Path | None = None,
) -> DeliveryCheck:
    month = Month.of(month)  # parsed at the edge (CLI, DAG, backfill); a label from the Python API or a test
    input_dir = landing_zone.location(input_dir)  # a folder, or an s3:// landing zone (pipelines/landing_zone.py)
    if not landing_zone.is_remote(input_dir) and not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} does not exist")
    with (
        runs.start(PIPELINE, month.label, run_id=run_id, warehouse=warehouse, lake_root=lake_root) as r,
        ExitStack() as stack,
    ):
        manifest = r.manifest
        input_dir = landing_zone.local_inputs(input_dir, r.scratch)  # s3://: its reference files copied to scratch
        with r.step("read"):
            registry = load_registry(input_dir)
            changes = sources.read_changes(input_dir)
            deliveries = sources.read_deliveries(input_dir)
            dispatch = sources.read_dispatch(input_dir)
            if dispatch is None:
                logger.info("delivery %s: no dispatch_records: late or missing generation is not estimated", month)
        manifest.add_input(find_input(input_dir, "metering_points"), registry.height)
        manifest.add_input(changes.path, changes.rows.height)
        manifest.add_input(deliveries.path, deliveries.rows.height)
        if dispatch is not None:
            manifest.add_input(find_input(input_dir, "dispatch_records"), dispatch.height)

        with r.step("validate"):
            params = {
                "known_participants": registry["participant"].unique().sort().to_list(),
                "known_points": registry["point_id"].unique().sort().to_list(),
            }
            r.validation = quality.run_suite(
                "delivery_vpn_changes", changes.label, sources.check_frame(changes), params, id_columns=["line"]
            ) + quality.run_suite(
                "delivery_directamm_deliveries",
                deliveries.label,
                sources.check_frame(deliveries),
                params,
                id_columns=["line"],
            )
            quality.raise_on_errors(r.validation)

        # one reader, one snapshot, for the run's reads of the warehouse; closed before the publish
        src = stack.enter_context(_open_reader(r.settings))
        with r.step("review"):
            completeness, completeness_note = read_completeness(month, src)
            if completeness is None:  # each change's interrogation row carries the note; say it once here
                logger.info("delivery %s: rule 6(a) fails for every change: %s", month, completeness_note)
            judged = judge(
                month,
                registry,
                changes.rows,
                deliveries.good(),
                config_dir,
                completeness=completeness,
                completeness_note=completeness_note,
            )
            failing = judged.review.filter(~pl.col("ok"))["change_id"].n_unique()
            logger.info(
                "delivery %s: %d change(s) reviewed, %d fail a rule; %d change row(s) no month can claim",
                month,
                judged.review["change_id"].n_unique(),
                failing,
                judged.unplaced.height,
            )

        with r.step("estimate"):
            behind = judged.points.filter(pl.col("status").is_in(["late", "missing"]))
            ids = behind["point_id"].unique().to_list()
            hourly, note = estimation.read_meter_hourly(ids, month, src) if ids else (None, "")
            stack.close()  # the last read: an open reader must not outlive it into the publish
            estimated, notes = estimation.estimate(
                behind, registry, month, meter_hourly=hourly, meter_hourly_note=note, dispatch=dispatch
            )
            points = judged.points.join(notes, on="point_id", how="left").with_columns(
                pl.when(pl.col("status").is_in(["late", "missing"])).then(pl.col(c)).alias(c)
                for c in ("estimation", "estimation_key", "estimation_args")
            )

        unreadable = _unreadable(month, changes, deliveries, judged.unplaced)
        result = DeliveryCheck(
            month.label,
            r.run_id,
            judged.review,
            judged.compliance,
            points,
            estimated,
            unreadable,
            r.validation,
            changes=_change_dates(month, judged.changes),
        )
        manifest.counts.update(
            changes=result.review["change_id"].n_unique(),
            rules_failed=int((~result.review["ok"]).sum()),
            unreadable_rows=result.unreadable.height,
            warnings=sum(not c.success for c in result.validation),
        )
        r.publish([table_registry.table(name).replace(frame, month.label) for name, frame in _frames(result).items()])
    result.snapshot_id = r.snapshot_id
    # the letters after the commit, from what was published: the same entry as `mayorista report
    # delivery`, so a re-rendering is this rendering
    from pipelines.reports import delivery as letters  # matplotlib/jinja2 only when letters are written

    root = r.settings.lake_root
    written = letters.render(month, snapshot=r.snapshot_id, warehouse=r.warehouse, lake_root=root)
    result.reports = {participant: files.html for participant, files in written.items()}
    logger.info(
        "delivery %s: %d participant letter(s) in %s", month, len(result.reports), report_dir(root, month.label)
    )
    result.summary = (
        summarize(result, r.settings)
        + "\ntimings: "
        + ", ".join(f"{step} {seconds:.1f}s" for step, seconds in manifest.timings_s.items())
    )
    return result


def _open_reader(settings: warehouse.Where) -> warehouse.Reader:
    return warehouse.open_reader(settings, missing_ok=True, publishing=True)


def read_completeness(
    month: Month, source: warehouse.Reader | warehouse.Where
) -> tuple[pl.DataFrame | None, str | None]:
    """meter_completeness rows of `month` (the supply month of the changes this run reviews: they were
    executed in it) for rule 6(a), or (None, why not) when there is no warehouse or no such table.
    An empty frame means the table exists but that month's readings were never ingested. `source`: the
    run's reader, or a catalog path."""
    with warehouse.reading(source) as src:
        if not src.found:
            return None, f"no warehouse at {src.catalog}"
        if not src.has("meter_completeness"):
            return None, "the warehouse has no meter_completeness table"
        rows = src.frame(
            "SELECT point_id, month, channel, expected_intervals, received_intervals FROM {c} WHERE month = ?",
            [month.label],
            c="meter_completeness",
        )
    return rows, None


def _unreadable(month: Month, changes: Source, deliveries: Source, unplaced: pl.DataFrame) -> pl.DataFrame:
    """Rows this month's run could not use, with the reason: change rows no month can claim, and
    delivery rows for this month (or for an unreadable month) that did not parse. The reason twice,
    as the review's evidence (rules.py): `reason` in English for analysts, `reason_key` +
    `reason_args` for the letters to word in their reader's language."""
    bad_deliveries = deliveries.bad().filter(pl.col("supply_month").is_null() | (pl.col("supply_month") == month.label))
    # what is wrong with each column of a delivery row, as facts (inputs.read_rows says the same in words)
    problems = pl.concat_list(
        [
            pl.when(pl.col(f"_raw_{c}").is_null() | (pl.col(f"_raw_{c}") == ""))
            .then(rules.fact("blank", column=c))
            .when(pl.col(c).is_null())
            .then(rules.fact("unparsable", column=c, value=pl.col(f"_raw_{c}")))
            for c in sources.DELIVERIES_SCHEMA
        ]
    ).list.drop_nulls()
    return pl.concat(
        [
            unplaced.select(
                pl.lit(changes.label).alias("source"),
                "line",
                "participant",
                pl.format(
                    "change {}: {}; no month can be reviewed for it", pl.col("change_id"), pl.col("reason")
                ).alias("reason"),
                pl.lit("unreadable.change").alias("reason_key"),
                rules.args(change_id=pl.col("change_id"), problem=pl.col("problem")).alias("reason_args"),
            ),
            sources.quarantine(deliveries)
            .join(
                bad_deliveries.select(
                    pl.col("_line").alias("line"),
                    pl.col("_raw_participant").alias("participant"),
                    problems.alias("_problems"),
                ),
                on="line",
            )
            .select(
                "source",
                "line",
                "participant",
                pl.format("{} in row '{}'; not counted", pl.col("reason"), pl.col("row")).alias("reason"),
                pl.lit("unreadable.delivery").alias("reason_key"),
                rules.args(problems=pl.col("_problems"), row=pl.col("row")).alias("reason_args"),
            ),
        ]
    )


def report_dir(root: UPath, month: str) -> UPath:
    return lake.location(root) / "reports" / "delivery" / f"month={month}"


def _change_dates(month: Month, of_month: pl.DataFrame) -> pl.DataFrame:
    """vpn_changes rows: each change of the month with its dates as written in the input."""
    raw = {
        c: (pl.col(f"_raw_{c}") if f"_raw_{c}" in of_month.columns else pl.col(c).cast(pl.String))
        for c in _DATE_COLUMNS
    }
    return of_month.select(
        month=pl.lit(month.label),
        change_id="change_id",
        participant="participant",
        vpn_id=pl.col("vpn_id").cast(pl.String) if "vpn_id" in of_month.columns else pl.lit(None, pl.String),
        effective_date=pl.col("effective_date").cast(pl.String),
        line=pl.col("_line") if "_line" in of_month.columns else pl.lit(None, pl.Int64),
        **raw,
    )


def _frames(result: DeliveryCheck) -> dict[str, pl.DataFrame]:
    frames = {
        "vpn_change_review": result.review,
        "delivery_compliance": result.compliance,
        "delivery_points": result.points,
        "estimated_hourly": result.estimated,
        "delivery_unreadable_rows": result.unreadable.with_columns(month=pl.lit(result.month)),
        "vpn_changes": result.changes,
    }
    return {name: table_registry.table(name).typed(frame) for name, frame in frames.items()}


_LISTED = 20  # the summary is read in a terminal; the tables hold everything


def summarize(result: DeliveryCheck, where: warehouse.Where) -> str:
    review = result.review
    changes = review["change_id"].n_unique()
    failing = review.filter(~pl.col("ok"))["change_id"].n_unique()
    lines = [
        f"delivery {result.month}: {changes} VPN change(s) reviewed, {changes - failing} meet every rule, "
        f"{failing} do not (run {result.run_id})"
    ]
    per_rule = review.group_by("rule").agg(ok=pl.col("ok").sum(), failed=(~pl.col("ok")).sum())
    for rule in ("notice", "metering_period", "approvals", "interrogation", "delivery"):
        row = per_rule.filter(pl.col("rule") == rule)
        if row.height:
            lines.append(f"  {rule:<16} met {row['ok'][0]:>3}, not met {row['failed'][0]:>3}")
    with pl.Config(
        tbl_rows=50, tbl_cols=12, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_width_chars=160
    ):
        lines.append(f"Direct@mm delivery compliance, supply month {result.month}:")
        lines.append(str(result.compliance.drop("month")))
    behind = result.points.filter(pl.col("status").is_in(["late", "missing"]))
    lines.append(
        f"late or missing points: {behind.height}; estimated_hourly rows: {result.estimated.height} "
        f"for {result.estimated['point_id'].n_unique()} point(s)"
    )
    listed = behind.unique("point_id").sort("point_id")
    for row in listed.head(_LISTED).iter_rows(named=True):
        lines.append(f"  {row['point_id']} ({row['kind']}, {row['status']}): {row['estimation']}")
    if listed.height > _LISTED:
        lines.append(f"  ... and {listed.height - _LISTED} more (table delivery_points)")
    others = result.points.filter(pl.col("status").is_in(["not_required", "unknown_point"]))
    if others.height:
        lines.append(
            "deliveries reported but not counted: "
            + ", ".join(
                f"{r['point_id']} ({r['status']})"
                for r in others.unique("point_id").sort("point_id").iter_rows(named=True)
            )
        )
    warnings = [c for c in result.validation if not c.success]
    lines.append(f"data-quality checks: {len(result.validation)} run, {len(warnings)} warning(s)")
    lines += [f"  - {c.source}: {c.check} [{c.column}]: {c.detail}" for c in warnings]
    if result.unreadable.height:
        lines.append(f"input rows that could not be used: {result.unreadable.height}")
        lines += [
            f"  - {r['source']} line {r['line']}: {r['reason']}"
            for r in result.unreadable.head(_LISTED).iter_rows(named=True)
        ]
        if result.unreadable.height > _LISTED:
            lines.append(f"  ... and {result.unreadable.height - _LISTED} more (table delivery_unreadable_rows)")
    lines.append(f"reports ({len(result.reports)}):")
    lines += [f"  {path}" for path in result.reports.values()]
    lines.append(
        f"warehouse: {warehouse.describe(where)} (snapshot {result.snapshot_id}); query it with `mayorista sql`"
    )
    return "\n".join(lines)
