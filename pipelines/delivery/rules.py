"""The administrator's rules for changing an existing VPN (connectivity guide, section 2.2.2;
contract: ../shared/contracts/metering.md), one verdict per change and rule, with the evidence.

- notice: proposed_date >= letter_date + 5 business days (rule 3).
- metering_period: the effective date is not one of the first 7 business days of its month (rule 4);
  effective date = proposed_date, or the next business day when it falls on a weekend/holiday (rule 5).
- approvals: Medición and Tecnología both approved, on or before the effective date (rule 2).
The `delivery` rule (numeral 14.10) lives in compliance.py.

A date that is missing or does not parse makes the rules that need it ok = false with the reason:
a change that cannot be judged never passes."""

from __future__ import annotations

import polars as pl

from pipelines.business_days import BusinessCalendar

NOTICE_BUSINESS_DAYS = 5  # rule 3: "con 5 días hábiles de anticipación"
METERING_PERIOD_BUSINESS_DAYS = 7  # rule 4: "los primeros 7 días hábiles del mes"

_LABELS = {
    "letter_date": "letter date", "proposed_date": "proposed date", "executed_on": "execution date",
    "notified_on": "notification date", "medicion_approved_on": "Medición approval",
    "tecnologia_approved_on": "Tecnología approval",
}

REVIEW_COLUMNS = ["month", "change_id", "participant", "rule", "ok", "detail", "line"]


def date_problem(column: str) -> pl.Expr:
    """Why a date column cannot be used (missing, or not a date), else null."""
    raw = pl.col(f"_raw_{column}")
    return (
        pl.when(raw.is_null() | (raw == "")).then(pl.lit(f"no {_LABELS[column]} recorded"))
        .when(pl.col(column).is_null()).then(pl.format(f"{column} '{{}}' is not a date (YYYY-MM-DD)", raw))
    )


def outside_calendar(column: str, derived: str, calendar: BusinessCalendar) -> pl.Expr:
    """A date that parsed but lies outside the calendar (a typo such as 2062 for 2026), else null."""
    first, last = calendar.days["date"].min(), calendar.days["date"].max()
    return pl.when(pl.col(column).is_not_null() & pl.col(derived).is_null()).then(
        pl.format(f"{column} {{}} is outside the business-day calendar ({first}..{last}): check the date",
                  pl.col(column)))


def month_of_change() -> pl.Expr:
    """The month whose run reviews the change: month of executed_on, or of proposed_date for a change
    never executed. Null when that date is unusable (the row is then reported as unplaced)."""
    raw_executed = pl.col("_raw_executed_on")
    never_executed = raw_executed.is_null() | (raw_executed == "")
    return (
        pl.when(pl.col("executed_on").is_not_null()).then(pl.col("executed_on").dt.strftime("%Y-%m"))
        .when(never_executed).then(pl.col("proposed_date").dt.strftime("%Y-%m"))
    )


def place(changes: pl.DataFrame, month: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the changes the run for `month` reviews, rows no run can place because their date is unusable)."""
    placed = changes.with_columns(_month=month_of_change())
    unplaced = placed.filter(pl.col("_month").is_null()).select(
        "change_id", "participant", pl.col("_line").alias("line"),
        pl.coalesce(date_problem("executed_on"), date_problem("proposed_date")).alias("reason"),
    )
    return placed.filter(pl.col("_month") == month).drop("_month"), unplaced


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
            days.select(pl.col("date").alias("proposed_date"), pl.col("on_or_after").alias("effective_date"),
                        pl.col("reason").alias("proposed_closed")),
            on="proposed_date", how="left",
        )
        .join(
            calendar.business_days_after(NOTICE_BUSINESS_DAYS).rename(
                {"date": "letter_date", f"plus_{NOTICE_BUSINESS_DAYS}": "notice_due"}),
            on="letter_date", how="left",
        )
        .join(days.select(pl.col("date").alias("effective_date"), pl.col("month_rank").alias("effective_rank")),
              on="effective_date", how="left")
        .with_columns(_month_start=pl.col("effective_date").dt.truncate("1mo"))
        .join(seventh, on="_month_start", how="left")
        .drop("_month_start")
    )


def _closed_in_notice_window(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    """Holidays and administrator's days (weekdays) between the letter and the notice due date."""
    closed = calendar.days.filter(~pl.col("business") & (pl.col("date").dt.weekday() <= 5)).select("date", "reason")
    window = changes.filter(pl.col("notice_due").is_not_null()).select("change_id", "letter_date", "notice_due")
    return (
        window.join_where(closed, pl.col("date") > pl.col("letter_date"), pl.col("date") <= pl.col("notice_due"))
        .sort("date")
        .group_by("change_id")
        .agg(pl.format("{} {}", pl.col("date"), pl.col("reason")).str.join(", ").alias("closed_days"))
    )


def notice(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    frame = changes.join(_closed_in_notice_window(changes, calendar), on="change_id", how="left")
    problem = pl.coalesce(date_problem("letter_date"), date_problem("proposed_date"),
                          outside_calendar("letter_date", "notice_due", calendar))
    ok = problem.is_null() & (pl.col("proposed_date") >= pl.col("notice_due"))
    closed = pl.when(pl.col("closed_days").is_not_null()).then(
        pl.format(" (not business days in between: {})", pl.col("closed_days"))).otherwise(pl.lit(""))
    detail = (
        pl.when(problem.is_not_null()).then(pl.format("{}: notice cannot be checked", problem))
        .when(ok).then(pl.format(
            "letter {}, proposed {}: at least {} business days' notice (earliest allowed {}{})",
            pl.col("letter_date"), pl.col("proposed_date"), pl.lit(NOTICE_BUSINESS_DAYS), pl.col("notice_due"), closed))
        .otherwise(pl.format(
            "letter {}, proposed {}: less than {} business days' notice; earliest allowed {}{}",
            pl.col("letter_date"), pl.col("proposed_date"), pl.lit(NOTICE_BUSINESS_DAYS), pl.col("notice_due"), closed))
    )
    return _rows(frame, "notice", ok, detail)


def metering_period(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    problem = pl.coalesce(date_problem("proposed_date"), outside_calendar("proposed_date", "effective_date", calendar))
    ok = problem.is_null() & (pl.col("effective_rank") > METERING_PERIOD_BUSINESS_DAYS)
    moved = pl.when(pl.col("proposed_closed").is_not_null()).then(pl.format(
        "proposed {} is not a business day ({}), so the change takes effect on the next business day; ",
        pl.col("proposed_date"), pl.col("proposed_closed"))).otherwise(pl.lit(""))
    where = pl.format(
        "{}effective {} is business day {} of {}, ", moved, pl.col("effective_date"), pl.col("effective_rank"),
        pl.col("effective_date").dt.strftime("%Y-%m"))
    detail = (
        pl.when(problem.is_not_null()).then(pl.format("{}: the effective date is unknown", problem))
        .when(ok).then(pl.format("{}after the metering period (first {} business days end {})", where,
                                 pl.lit(METERING_PERIOD_BUSINESS_DAYS), pl.col("metering_period_end")))
        .otherwise(pl.format("{}inside the metering period (first {} business days end {})", where,
                             pl.lit(METERING_PERIOD_BUSINESS_DAYS), pl.col("metering_period_end")))
    )
    return _rows(changes, "metering_period", ok, detail)


def approvals(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    def issue(column: str) -> pl.Expr:
        return (
            pl.when(date_problem(column).is_not_null()).then(date_problem(column))
            .when(pl.col("effective_date").is_not_null() & (pl.col(column) > pl.col("effective_date")))
            .then(pl.format(f"{_LABELS[column]} on {{}} is after the effective date {{}}", pl.col(column),
                            pl.col("effective_date")))
        )

    issues = pl.concat_str([issue("medicion_approved_on"), issue("tecnologia_approved_on")],
                           separator="; ", ignore_nulls=True)
    no_effective = pl.coalesce(date_problem("proposed_date"),
                               outside_calendar("proposed_date", "effective_date", calendar))
    ok = no_effective.is_null() & (issues == "")
    detail = (
        pl.when(no_effective.is_not_null()).then(pl.format(
            "{}: approvals cannot be compared with the effective date{}", no_effective,
            pl.when(issues != "").then(pl.format("; {}", issues)).otherwise(pl.lit(""))))
        .when(ok).then(pl.format("Medición approved {}, Tecnología approved {}: both on or before the effective date {}",
                                 pl.col("medicion_approved_on"), pl.col("tecnologia_approved_on"), pl.col("effective_date")))
        .otherwise(issues)
    )
    return _rows(changes, "approvals", ok, detail)


def _rows(frame: pl.DataFrame, rule: str, ok: pl.Expr, detail: pl.Expr) -> pl.DataFrame:
    return frame.select(
        "change_id", "participant", pl.lit(rule).alias("rule"), ok.fill_null(False).alias("ok"),
        detail.alias("detail"), pl.col("_line").alias("line"),
    )


def review(changes: pl.DataFrame, calendar: BusinessCalendar) -> pl.DataFrame:
    """notice, metering_period and approvals rows for changes already enriched by with_calendar_dates."""
    return pl.concat([notice(changes, calendar), metering_period(changes, calendar), approvals(changes, calendar)])
