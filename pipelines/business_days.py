"""Business days as the market administrator counts them (VPN-change rules, NCC-14).

A business day is a weekday that is neither a Guatemalan public holiday (the `holidays` package,
country GT, which already moves holidays to Mondays where the law says so) nor one of the
administrator's own non-working days listed in `config/nonworking_days.csv` (date,reason).

The calendar is a small polars frame, one row per day, so rules can join against it instead of
looping over dates; the scalar helpers read the same frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import holidays
import polars as pl

from pipelines import config
from pipelines.errors import InputError
from pipelines.inputs import read_table

logger = logging.getLogger(__name__)

NONWORKING_STEM = "nonworking_days"


def nonworking_days(config_dir: Path | None = None) -> pl.DataFrame:
    """The administrator's own non-working days (date, reason); an empty file means none."""
    directory = Path(config_dir or config.config_dir())
    frame = read_table(directory, NONWORKING_STEM, {"date": "date", "reason": "str"}, required=False)
    if frame is None:
        raise InputError(f"missing {NONWORKING_STEM}.csv in {directory} (columns date,reason; may hold no rows)")
    return (
        frame.filter(pl.col("date").is_not_null())
        .with_columns(pl.col("reason").fill_null("administrator's non-working day"))
        .unique("date", keep="first", maintain_order=True)
    )


def public_holidays(first_year: int, last_year: int) -> pl.DataFrame:
    found = holidays.country_holidays("GT", years=range(first_year, last_year + 1), language="en_US")
    return pl.DataFrame(
        {"date": list(found.keys()), "reason": [f"public holiday: {name}" for name in found.values()]},
        schema={"date": pl.Date, "reason": pl.String},
    )


@dataclass(frozen=True)
class BusinessCalendar:
    """One row per day: date, business, reason (why not a business day, in English), closed_kind (the
    same without words: saturday | sunday | holiday | nonworking, for the reports to word in their
    reader's language), seq (business days up to and including the date since the calendar's start),
    month_rank (ordinal of a business day within its month), on_or_after (the first business day on
    or after the date)."""

    days: pl.DataFrame

    @classmethod
    def for_years(cls, first_year: int, last_year: int, config_dir: Path | None = None) -> BusinessCalendar:
        # a year's margin at the end so "next business day" / "+5 business days" never run off the end
        last_year += 1
        public, own = public_holidays(first_year, last_year), nonworking_days(config_dir)
        # which closed days a rule saw: a rule's outcome turns on them, and the administrator's list changes
        logger.info(
            "business-day calendar %d..%d: %d public holiday(s) of GT, %d day(s) listed in nonworking_days",
            first_year,
            last_year,
            public.height,
            own.height,
        )
        closed = pl.concat([public.with_columns(_kind=pl.lit("holiday")), own.with_columns(_kind=pl.lit("nonworking"))])
        # a public holiday that is also one of the administrator's days is named as the holiday
        closed = closed.group_by("date").agg(pl.col("reason").str.join("; "), pl.col("_kind").min())
        days = (
            pl.DataFrame({"date": pl.date_range(date(first_year, 1, 1), date(last_year, 12, 31), eager=True)})
            .join(closed, on="date", how="left")
            .with_columns(
                reason=pl.when(pl.col("date").dt.weekday() == 6)
                .then(pl.lit("Saturday"))
                .when(pl.col("date").dt.weekday() == 7)
                .then(pl.lit("Sunday"))
                .otherwise(pl.col("reason")),
                closed_kind=pl.when(pl.col("date").dt.weekday() == 6)
                .then(pl.lit("saturday"))
                .when(pl.col("date").dt.weekday() == 7)
                .then(pl.lit("sunday"))
                .otherwise(pl.col("_kind")),
            )
            .drop("_kind")
            .with_columns(business=pl.col("reason").is_null())
            .with_columns(
                seq=pl.col("business").cast(pl.Int64).cum_sum(),
                month_rank=pl.when(pl.col("business")).then(
                    pl.col("business").cast(pl.Int64).cum_sum().over(pl.col("date").dt.truncate("1mo"))
                ),
                on_or_after=pl.when(pl.col("business")).then(pl.col("date")).backward_fill(),
            )
        )
        return cls(days)

    def _row(self, day: date) -> dict:
        rows = self.days.filter(pl.col("date") == day)
        if rows.height == 0:
            raise InputError(
                f"{day} is outside the business-day calendar ({self.days['date'][0]}..{self.days['date'][-1]})"
            )
        return rows.row(0, named=True)

    def is_business_day(self, day: date) -> bool:
        return bool(self._row(day)["business"])

    def reason(self, day: date) -> str | None:
        """Why `day` is not a business day (None when it is one)."""
        return self._row(day)["reason"]

    def next_business_day(self, day: date) -> date:
        """`day` itself when it is a business day, else the first business day after it."""
        found = self._row(day)["on_or_after"]
        if found is None:
            raise InputError(f"no business day after {day} within the calendar")
        return found

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day after `day` (n >= 1), counting from the day after."""
        target = self._row(day)["seq"] + n
        found = self.days.filter(pl.col("business") & (pl.col("seq") == target))
        if found.height == 0:
            raise InputError(f"{day} + {n} business days is outside the calendar")
        return found["date"][0]

    def first_business_days(self, year: int, month: int, n: int) -> list[date]:
        return self.days.filter(
            (pl.col("date").dt.year() == year) & (pl.col("date").dt.month() == month) & (pl.col("month_rank") <= n)
        )["date"].to_list()

    def business_days_after(self, n: int) -> pl.DataFrame:
        """For every calendar date: `plus_n`, the n-th business day after it (for joins)."""
        business = self.days.filter("business").select(pl.col("seq"), pl.col("date").alias(f"plus_{n}"))
        return (
            self.days.select("date", (pl.col("seq") + n).alias("seq")).join(business, on="seq", how="left").drop("seq")
        )
