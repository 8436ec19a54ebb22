"""The administrator's rules for changing an existing VPN (connectivity guide, section 2.2.2;
contract: ../shared/contracts/metering.md), one verdict per change and rule, with the evidence.

- notice: proposed_date >= letter_date + 5 business days (rule 3).
- metering_period: the effective date is not one of the first 7 business days of its month (rule 4);
  effective date = proposed_date, or the next business day when it falls on a weekend/holiday (rule 5).
- approvals: Medición and Tecnología both approved, on or before the effective date (rule 2).
- interrogation: every metering point of the participant active in the supply month (month of
  executed_on) has 100% completeness on all four channels from real readings (rule 6(a)), judged from
  the warehouse's meter_completeness (received_intervals counts real readings only, never estimates).
The `delivery` rule (numeral 14.10, rule 6(b)) lives in compliance.py.

A date that is missing or does not parse makes the rules that need it ok = false with the reason:
a change that cannot be judged never passes.

Each row's evidence is published twice: `detail`, an English sentence for analysts (the contract's
column), and `detail_key` + `detail_args`, the same evidence without words (a key of the reports'
catalogues under [evidence] and a JSON object of its values: ISO dates, integers, nested facts), so
a letter words it in its reader's language (pipelines/reports/evidence.py, docs/reports.md)."""

from __future__ import annotations

import polars as pl

from pipelines.business_days import BusinessCalendar
from pipelines.metering.keys import CHANNELS
from pipelines.metering.registry import active_in
from pipelines.periods import Month

NOTICE_BUSINESS_DAYS = 5  # rule 3: "con 5 días hábiles de anticipación"
METERING_PERIOD_BUSINESS_DAYS = 7  # rule 4: "los primeros 7 días hábiles del mes"

_LABELS = {
    "letter_date": "letter date",
    "proposed_date": "proposed date",
    "executed_on": "execution date",
    "notified_on": "notification date",
    "medicion_approved_on": "Medición approval",
    "tecnologia_approved_on": "Tecnología approval",
}

REVIEW_COLUMNS = ["month", "change_id", "participant", "rule", "ok", "detail", "detail_key", "detail_args", "line"]

# A fact nested in a rule's evidence (why a date cannot be used, a closed day, an approval that came
# late...): one struct type for all of them, so when/then and lists can mix them. `key` names the
# catalogue entry evidence.<key>; the other fields are text (dates as ISO) or null.
FACT_FIELDS = ("column", "value", "date", "kind", "first", "last")


def fact(key: str | pl.Expr, **fields: pl.Expr | str) -> pl.Expr:
    """A fact's struct: `key` plus FACT_FIELDS (missing ones null; dates cast to ISO text)."""
    unknown = set(fields) - set(FACT_FIELDS)
    if unknown:
        raise ValueError(f"a fact has no field {', '.join(sorted(unknown))} (fields: {', '.join(FACT_FIELDS)})")
    values = {
        name: (pl.lit(fields[name]) if isinstance(fields[name], str) else fields[name]).cast(pl.String)
        if name in fields
        else pl.lit(None, pl.String)
        for name in FACT_FIELDS
    }
    return pl.struct(key=pl.lit(key) if isinstance(key, str) else key, **values)


def args(**values: pl.Expr) -> pl.Expr:
    """`detail_args`: the evidence's values as one JSON object per row."""
    return pl.struct(**values).struct.json_encode()


def date_fact(column: str) -> pl.Expr:
    """date_problem as a fact (no_date | not_a_date), else null."""
    raw = pl.col(f"_raw_{column}")
    return (
        pl.when(raw.is_null() | (raw == ""))
        .then(fact("no_date", column=column))
        .when(pl.col(column).is_null())
        .then(fact("not_a_date", column=column, value=raw))
    )


def outside_calendar_fact(column: str, derived: str, calendar: BusinessCalendar) -> pl.Expr:
    """outside_calendar as a fact, else null."""
    first, last = calendar.days["date"].min(), calendar.days["date"].max()
    return pl.when(pl.col(column).is_not_null() & pl.col(derived).is_null()).then(
        fact("outside_calendar", column=column, value=pl.col(column), first=str(first), last=str(last))
    )


def _iso(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String)


def date_problem(column: str) -> pl.Expr:
    """Why a date column cannot be used (missing, or not a date), else null."""
    raw = pl.col(f"_raw_{column}")
    return (
        pl.when(raw.is_null() | (raw == ""))
        .then(pl.lit(f"no {_LABELS[column]} recorded"))
        .when(pl.col(column).is_null())
        .then(pl.format(f"{column} '{{}}' is not a date (YYYY-MM-DD)", raw))
    )


def outside_calendar(column: str, derived: str, calendar: BusinessCalendar) -> pl.Expr:
    """A date that parsed but lies outside the calendar (a typo such as 2062 for 2026), else null."""
    first, last = calendar.days["date"].min(), calendar.days["date"].max()
    return pl.when(pl.col(column).is_not_null() & pl.col(derived).is_null()).then(
        pl.format(
            f"{column} {{}} is outside the business-day calendar ({first}..{last}): check the date", pl.col(column)
        )
    )


def month_of_change() -> pl.Expr:
    """The month whose run reviews the change: month of executed_on, or of proposed_date for a change
    never executed. Null when that date is unusable (the row is then reported as unplaced)."""
    raw_executed = pl.col("_raw_executed_on")
    never_executed = raw_executed.is_null() | (raw_executed == "")
    return (
        pl.when(pl.col("executed_on").is_not_null())
        .then(pl.col("executed_on").dt.strftime("%Y-%m"))
        .when(never_executed)
        .then(pl.col("proposed_date").dt.strftime("%Y-%m"))
    )


def place(changes: pl.DataFrame, month: Month) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the changes the run for `month` reviews, rows no run can place because their date is unusable)."""
    placed = changes.with_columns(_month=month_of_change())
    unplaced = placed.filter(pl.col("_month").is_null()).select(
        "change_id",
        "participant",
        pl.col("_line").alias("line"),
        pl.coalesce(date_problem("executed_on"), date_problem("proposed_date")).alias("reason"),
        pl.coalesce(date_fact("executed_on"), date_fact("proposed_date")).alias("problem"),
    )
    return placed.filter(pl.col("_month") == month.label).drop("_month"), unplaced


def with_calendar_dates(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    """Add effective_date, proposed_closed (why the proposed date is not a business day), notice_due
    (letter + 5 business days), effective_rank (business-day ordinal in its month) and
    metering_period_end (the month's 7th business day)."""
    days = calendar.days
    seventh = days.filter(pl.col("month_rank") == METERING_PERIOD_BUSINESS_DAYS).select(
        pl.col("date").dt.truncate("1mo").alias("_month_start"), pl.col("date").alias("metering_period_end")
    )
    return (
        changes.join(
            days.select(
                pl.col("date").alias("proposed_date"),
                pl.col("on_or_after").alias("effective_date"),
                pl.col("reason").alias("proposed_closed"),
            ),
            on="proposed_date",
            how="left",
        )
        .join(
            calendar.business_days_after(NOTICE_BUSINESS_DAYS).rename(
                {"date": "letter_date", f"plus_{NOTICE_BUSINESS_DAYS}": "notice_due"}
            ),
            on="letter_date",
            how="left",
        )
        .join(
            days.select(pl.col("date").alias("effective_date"), pl.col("month_rank").alias("effective_rank")),
            on="effective_date",
            how="left",
        )
        .with_columns(_month_start=pl.col("effective_date").dt.truncate("1mo"))
        .join(seventh, on="_month_start", how="left")
        .drop("_month_start")
    )


def _closed_in_notice_window(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    """Holidays and administrator's days (weekdays) between the letter and the notice due date."""
    closed = calendar.days.filter(~pl.col("business") & (pl.col("date").dt.weekday() <= 5)).select(
        "date", "reason", "closed_kind"
    )
    window = changes.filter(pl.col("notice_due").is_not_null()).select("change_id", "letter_date", "notice_due")
    return (
        window.join_where(closed, pl.col("date") > pl.col("letter_date"), pl.col("date") <= pl.col("notice_due"))
        .sort("date")
        .group_by("change_id")
        .agg(
            pl.format("{} {}", pl.col("date"), pl.col("reason")).str.join(", ").alias("closed_days"),
            fact("closed", date=pl.col("date"), kind=pl.col("closed_kind")).alias("closed_facts"),
        )
    )


def notice(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    frame = changes.join(_closed_in_notice_window(changes, calendar), on="change_id", how="left")
    problem = pl.coalesce(
        date_problem("letter_date"),
        date_problem("proposed_date"),
        outside_calendar("letter_date", "notice_due", calendar),
    )
    ok = problem.is_null() & (pl.col("proposed_date") >= pl.col("notice_due"))
    closed = (
        pl.when(pl.col("closed_days").is_not_null())
        .then(pl.format(" (not business days in between: {})", pl.col("closed_days")))
        .otherwise(pl.lit(""))
    )
    detail = (
        pl.when(problem.is_not_null())
        .then(pl.format("{}: notice cannot be checked", problem))
        .when(ok)
        .then(
            pl.format(
                "letter {}, proposed {}: at least {} business days' notice (earliest allowed {}{})",
                pl.col("letter_date"),
                pl.col("proposed_date"),
                pl.lit(NOTICE_BUSINESS_DAYS),
                pl.col("notice_due"),
                closed,
            )
        )
        .otherwise(
            pl.format(
                "letter {}, proposed {}: less than {} business days' notice; earliest allowed {}{}",
                pl.col("letter_date"),
                pl.col("proposed_date"),
                pl.lit(NOTICE_BUSINESS_DAYS),
                pl.col("notice_due"),
                closed,
            )
        )
    )
    problem_fact = pl.coalesce(
        date_fact("letter_date"),
        date_fact("proposed_date"),
        outside_calendar_fact("letter_date", "notice_due", calendar),
    )
    key = pl.when(problem.is_not_null()).then(pl.lit("notice.unchecked")).when(ok).then(pl.lit("notice.met"))
    values = args(
        problem=problem_fact,
        letter=_iso("letter_date"),
        proposed=_iso("proposed_date"),
        days=pl.lit(NOTICE_BUSINESS_DAYS),
        due=_iso("notice_due"),
        closed=pl.col("closed_facts"),
    )
    return _rows(frame, "notice", ok, detail, key.otherwise(pl.lit("notice.not_met")), values)


def metering_period(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    problem = pl.coalesce(date_problem("proposed_date"), outside_calendar("proposed_date", "effective_date", calendar))
    ok = problem.is_null() & (pl.col("effective_rank") > METERING_PERIOD_BUSINESS_DAYS)
    moved = (
        pl.when(pl.col("proposed_closed").is_not_null())
        .then(
            pl.format(
                "proposed {} is not a business day ({}), so the change takes effect on the next business day; ",
                pl.col("proposed_date"),
                pl.col("proposed_closed"),
            )
        )
        .otherwise(pl.lit(""))
    )
    where = pl.format(
        "{}effective {} is business day {} of {}, ",
        moved,
        pl.col("effective_date"),
        pl.col("effective_rank"),
        pl.col("effective_date").dt.strftime("%Y-%m"),
    )
    detail = (
        pl.when(problem.is_not_null())
        .then(pl.format("{}: the effective date is unknown", problem))
        .when(ok)
        .then(
            pl.format(
                "{}after the metering period (first {} business days end {})",
                where,
                pl.lit(METERING_PERIOD_BUSINESS_DAYS),
                pl.col("metering_period_end"),
            )
        )
        .otherwise(
            pl.format(
                "{}inside the metering period (first {} business days end {})",
                where,
                pl.lit(METERING_PERIOD_BUSINESS_DAYS),
                pl.col("metering_period_end"),
            )
        )
    )
    problem_fact = pl.coalesce(
        date_fact("proposed_date"), outside_calendar_fact("proposed_date", "effective_date", calendar)
    )
    moved_fact = pl.when(pl.col("proposed_closed").is_not_null()).then(
        fact("moved", date=pl.col("proposed_date"), kind=pl.col("_proposed_kind"))
    )
    key = (
        pl.when(problem.is_not_null())
        .then(pl.lit("metering_period.unknown"))
        .when(ok)
        .then(pl.lit("metering_period.met"))
        .otherwise(pl.lit("metering_period.not_met"))
    )
    values = args(
        problem=problem_fact,
        moved=moved_fact,
        effective=_iso("effective_date"),
        rank=pl.col("effective_rank"),
        month=pl.col("effective_date").dt.strftime("%Y-%m"),
        days=pl.lit(METERING_PERIOD_BUSINESS_DAYS),
        end=_iso("metering_period_end"),
    )
    frame = changes.join(
        calendar.days.select(pl.col("date").alias("proposed_date"), pl.col("closed_kind").alias("_proposed_kind")),
        on="proposed_date",
        how="left",
    )
    return _rows(frame, "metering_period", ok, detail, key, values)


def approvals(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    def issue(column: str) -> pl.Expr:
        return (
            pl.when(date_problem(column).is_not_null())
            .then(date_problem(column))
            .when(pl.col("effective_date").is_not_null() & (pl.col(column) > pl.col("effective_date")))
            .then(
                pl.format(
                    f"{_LABELS[column]} on {{}} is after the effective date {{}}",
                    pl.col(column),
                    pl.col("effective_date"),
                )
            )
        )

    issues = pl.concat_str(
        [issue("medicion_approved_on"), issue("tecnologia_approved_on")], separator="; ", ignore_nulls=True
    )
    no_effective = pl.coalesce(
        date_problem("proposed_date"), outside_calendar("proposed_date", "effective_date", calendar)
    )
    ok = no_effective.is_null() & (issues == "")
    detail = (
        pl.when(no_effective.is_not_null())
        .then(
            pl.format(
                "{}: approvals cannot be compared with the effective date{}",
                no_effective,
                pl.when(issues != "").then(pl.format("; {}", issues)).otherwise(pl.lit("")),
            )
        )
        .when(ok)
        .then(
            pl.format(
                "Medición approved {}, Tecnología approved {}: both on or before the effective date {}",
                pl.col("medicion_approved_on"),
                pl.col("tecnologia_approved_on"),
                pl.col("effective_date"),
            )
        )
        .otherwise(issues)
    )

    def issue_fact(column: str) -> pl.Expr:
        return (
            pl.when(date_fact(column).is_not_null())
            .then(date_fact(column))
            .when(pl.col("effective_date").is_not_null() & (pl.col(column) > pl.col("effective_date")))
            .then(fact("approval_after", column=column, value=pl.col(column), last=pl.col("effective_date")))
        )

    issue_facts = pl.concat_list([issue_fact("medicion_approved_on"), issue_fact("tecnologia_approved_on")])
    key = (
        pl.when(no_effective.is_not_null())
        .then(pl.lit("approvals.unknown"))
        .when(ok)
        .then(pl.lit("approvals.met"))
        .otherwise(pl.lit("approvals.not_met"))
    )
    values = args(
        problem=pl.coalesce(
            date_fact("proposed_date"), outside_calendar_fact("proposed_date", "effective_date", calendar)
        ),
        # the same list twice: `issues` is the whole sentence of approvals.not_met, `also` follows the
        # unknown effective date ("; ..." through evidence.list.also, nothing when empty)
        also=issue_facts.list.drop_nulls(),
        issues=issue_facts.list.drop_nulls(),
        medicion=_iso("medicion_approved_on"),
        tecnologia=_iso("tecnologia_approved_on"),
        effective=_iso("effective_date"),
    )
    return _rows(changes, "approvals", ok, detail, key, values)


COMPLETENESS_COLUMNS = {
    "point_id": pl.String,
    "month": pl.String,
    "channel": pl.String,
    "expected_intervals": pl.Int64,
    "received_intervals": pl.Int64,
}


def _floored_hundredths(received: pl.Expr, expected: pl.Expr) -> pl.Expr:
    """Completeness in hundredths of a percent, floored: 2879 of 2880 intervals is 9996 (99.96%), never
    rounded up to 100%. Integer arithmetic, so the text shows exactly two decimals."""
    return received * 10000 // expected


def _pct_text(hundredths: pl.Expr) -> pl.Expr:
    return pl.format("{}.{}", hundredths // 100, (hundredths % 100).cast(pl.String).str.zfill(2))


def interrogation(
    changes: pl.DataFrame, registry: pl.DataFrame, completeness: pl.DataFrame | None, note: str | None = None
) -> pl.DataFrame:
    """Rule 6(a) rows: in the supply month (month of executed_on) every metering point of the participant
    active that month has received_intervals >= expected_intervals on all four channels.

    `completeness` holds meter_completeness rows (COMPLETENESS_COLUMNS) of the supply months; None when
    the table could not be read (`note` says why). A supply month without any row was never ingested: the
    rule cannot be shown to hold, so ok = false with that reason. A required point missing from the
    table, or a channel missing, counts as 0%."""
    if completeness is None:
        completeness = pl.DataFrame(schema=COMPLETENESS_COLUMNS)
    completeness = completeness.select(pl.col(c).cast(t) for c, t in COMPLETENESS_COLUMNS.items())
    participants = registry["participant"].unique().to_list()
    heads = changes.with_columns(
        supply_month=pl.col("executed_on").dt.strftime("%Y-%m"),
        _problem=pl.when(pl.col("participant").is_null())
        .then(pl.lit("no participant recorded"))
        .when(~pl.col("participant").is_in(participants))
        .then(pl.format("participant {} is not in metering_points: its points are unknown", pl.col("participant")))
        .when(pl.col("executed_on").is_null())
        .then(
            pl.format("{}: the change was not carried out, so there is no supply month", date_problem("executed_on"))
        ),
        _problem_key=pl.when(pl.col("participant").is_null() | ~pl.col("participant").is_in(participants))
        .then(pl.lit("interrogation.unjudged"))
        .when(pl.col("executed_on").is_null())
        .then(pl.lit("interrogation.not_executed")),
        _problem_fact=pl.when(pl.col("participant").is_null())
        .then(fact("no_participant"))
        .when(~pl.col("participant").is_in(participants))
        .then(fact("unknown_participant", value=pl.col("participant")))
        .when(pl.col("executed_on").is_null())
        .then(date_fact("executed_on")),
    )
    months = heads.filter(pl.col("_problem").is_null())["supply_month"].unique().sort().to_list()
    required = pl.concat(
        [
            active_in(registry, m.first_day, m.last_day)
            .select("participant", "point_id", supply_month=pl.lit(month))
            .unique()
            for month in months
            for m in [Month.of(month)]
        ]
        or [pl.DataFrame(schema={"participant": pl.String, "point_id": pl.String, "supply_month": pl.String})]
    )
    ingested = completeness.select(supply_month="month").unique().with_columns(_ingested=pl.lit(True))
    channels = pl.DataFrame({"channel": list(CHANNELS), "_ch": list(range(len(CHANNELS)))})
    per_channel = (
        required.join(channels, how="cross")
        .join(completeness.rename({"month": "supply_month"}), on=["supply_month", "point_id", "channel"], how="left")
        .with_columns(
            pct=pl.when(pl.col("expected_intervals") > 0)
            .then(_floored_hundredths(pl.col("received_intervals").fill_null(0), pl.col("expected_intervals")))
            .otherwise(0),
            short=pl.col("received_intervals").fill_null(0) < pl.col("expected_intervals").fill_null(1),
        )
    )
    per_point = (
        per_channel.sort("_ch")
        .group_by("participant", "supply_month", "point_id")
        .agg(
            pct=pl.col("pct").min(),
            short=pl.col("short").any(),
            channels=pl.col("channel").filter("short").str.join(", "),
            known=pl.col("expected_intervals").is_not_null().any(),
        )
        .with_columns(
            text=pl.format(
                "{} {}% ({})",
                "point_id",
                _pct_text(pl.col("pct")),
                pl.when("known").then("channels").otherwise(pl.lit("not in meter_completeness")),
            ),
            item=pl.struct(
                key=pl.when("known").then(pl.lit("point_below")).otherwise(pl.lit("point_unknown")),
                point="point_id",
                pct=_pct_text(pl.col("pct")),
                channels="channels",
            ),
        )
    )
    summary = (
        per_point.sort("point_id")
        .group_by("participant", "supply_month")
        .agg(
            points=pl.len(),
            below=pl.col("short").sum(),
            listed=pl.col("text").filter("short").str.join(", "),
            items=pl.col("item").filter("short"),
        )
    )
    frame = (
        heads.join(summary, on=["participant", "supply_month"], how="left")
        .join(ingested, on="supply_month", how="left")
        .with_columns(pl.col("points", "below").fill_null(0))
    )
    never = (
        f"the readings of {{}} were never ingested (no meter_completeness rows"
        f"{'; ' + note if note else ''}): 100% interrogation cannot be shown"
    )
    detail = (
        pl.when(pl.col("_problem").is_not_null())
        .then(pl.format("{}: interrogation cannot be judged", "_problem"))
        .when(pl.col("points") == 0)
        .then(
            pl.format(
                "participant {} has no metering point active in {}: nothing to judge", "participant", "supply_month"
            )
        )
        .when(pl.col("_ingested").is_null())
        .then(pl.format(never, "supply_month"))
        .when(pl.col("below") == 0)
        .then(
            pl.format(
                "all {} metering point(s) active in {} have 100% of their intervals on all four channels from real "
                "readings",
                "points",
                "supply_month",
            )
        )
        .otherwise(
            pl.format(
                "{} of {} metering point(s) below 100% in {} (real readings; channels short in brackets): {}",
                "below",
                "points",
                "supply_month",
                "listed",
            )
        )
    )
    ok = (
        pl.col("_problem").is_null()
        & (pl.col("points") > 0)
        & pl.col("_ingested").is_not_null()
        & (pl.col("below") == 0)
    )
    key = (
        pl.when(pl.col("_problem").is_not_null())
        .then(pl.col("_problem_key"))
        .when(pl.col("points") == 0)
        .then(pl.lit("interrogation.no_points"))
        .when(pl.col("_ingested").is_null())
        .then(pl.lit("interrogation.never_ingested"))
        .when(pl.col("below") == 0)
        .then(pl.lit("interrogation.met"))
        .otherwise(pl.lit("interrogation.not_met"))
    )
    # the note (why meter_completeness could not be read: a warehouse path, a missing table) stays in
    # the analysts' `detail`: it is about the administrator's systems, not the participant's readings
    values = args(
        problem=pl.col("_problem_fact"),
        participant=pl.col("participant"),
        month=pl.col("supply_month"),
        points=pl.col("points").cast(pl.Int64),
        below=pl.col("below").cast(pl.Int64),
        listed=pl.col("items"),
    )
    return _rows(frame, "interrogation", ok, detail, key, values)


def _rows(frame: pl.DataFrame, rule: str, ok: pl.Expr, detail: pl.Expr, key: pl.Expr, values: pl.Expr) -> pl.DataFrame:
    return frame.select(
        "change_id",
        "participant",
        pl.lit(rule).alias("rule"),
        ok.fill_null(False).alias("ok"),
        detail.alias("detail"),
        key.alias("detail_key"),
        values.alias("detail_args"),
        pl.col("_line").alias("line"),
    )


def review(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    """notice, metering_period and approvals rows for changes already enriched by with_calendar_dates."""
    return pl.concat([notice(changes, calendar), metering_period(changes, calendar), approvals(changes, calendar)])
