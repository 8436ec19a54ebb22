"""Quarters and months as the market names them (`YYYY-MM`), and the hours they contain.

Times are naive local Guatemala time (UTC-6 with no daylight saving since 2006), an hour labelled
by its start, which is how the programming files are written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pipelines.errors import InputError

GUATEMALA = ZoneInfo("America/Guatemala")  # the one way to write the market's zone (UTC-6, no DST since 2006)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


INTERVAL = timedelta(minutes=15)  # the metering interval (NCC-14): 96 a day


def intervals_between(start: datetime, moment: datetime) -> int:
    """Whole 15-minute intervals from `start` to `moment` (floored): the index of the interval ending
    at `moment` when it lies on the grid."""
    return (moment - start) // INTERVAL


class _Span:
    """What a period derives from its `start` and `end` (the midnights that bound it)."""

    start: datetime
    end: datetime

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.start, self.end

    @property
    def last_day(self) -> date:
        """The period's last calendar day (its `end` is midnight after it)."""
        return (self.end - timedelta(days=1)).date()

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def hours(self) -> int:
        return hours_between(self.start, self.end)

    @property
    def intervals(self) -> int:
        """15-minute intervals in the period (2,976 in a 31-day month)."""
        return intervals_between(self.start, self.end)


@dataclass(frozen=True, order=True)
class Month(_Span):
    """A calendar month, parsed once from `YYYY-MM` at the edge (CLI, DAG, backfill) and passed down.
    `label` is what is stored and printed; `start`/`end` are the naive local [start, end) datetimes."""

    first_day: date

    @classmethod
    def parse(cls, text: str, what: str = "month") -> Month:
        return cls(parse_month(text, what))

    @classmethod
    def of(cls, value: Month | str, what: str = "month") -> Month:
        """A Month from a Month (as is) or its label (parsed): for the functions that still take either."""
        return value if isinstance(value, Month) else cls.parse(value, what)

    @classmethod
    def containing(cls, moment: date | datetime) -> Month:
        return cls(date(moment.year, moment.month, 1))

    @classmethod
    def of_interval_end(cls, interval_end: datetime) -> Month:
        """The month an interval belongs to: the one its start (`interval_end` - 15 min) lies in, so
        `2026-05-01 00:00` is April's last interval."""
        return cls.containing(interval_end - INTERVAL)

    @property
    def label(self) -> str:
        return month_label(self.first_day)

    def __str__(self) -> str:
        return self.label

    @property
    def start(self) -> datetime:
        return datetime(self.first_day.year, self.first_day.month, 1)

    @property
    def end(self) -> datetime:
        return self.next.start

    @property
    def previous(self) -> Month:
        return Month(add_months(self.first_day, -1))

    def plus(self, n: int) -> Month:
        """The month `n` months after this one (before it when `n` is negative)."""
        return Month(add_months(self.first_day, n))

    @property
    def next(self) -> Month:
        return Month(add_months(self.first_day, 1))


@dataclass(frozen=True, order=True)
class Quarter(_Span):
    """A programming quarter (NCC-11): three consecutive months named by the first, `YYYY-MM`."""

    first: Month

    @classmethod
    def parse(cls, text: str) -> Quarter:
        return cls(Month.parse(text, "quarter"))

    @classmethod
    def of(cls, value: Quarter | str) -> Quarter:
        return value if isinstance(value, Quarter) else cls.parse(value)

    @property
    def label(self) -> str:
        return self.first.label

    def __str__(self) -> str:
        return self.label

    @property
    def months(self) -> list[Month]:
        return [Month(add_months(self.first.first_day, k)) for k in range(3)]

    @property
    def month_labels(self) -> list[str]:
        return [m.label for m in self.months]

    @property
    def start(self) -> datetime:
        return self.first.start

    @property
    def end(self) -> datetime:
        return self.months[-1].end

    @property
    def previous(self) -> Quarter:
        return Quarter(Month(add_months(self.first.first_day, -3)))


@dataclass(frozen=True, order=True)
class Day:
    """One calendar day, `YYYY-MM-DD` (daily metering runs)."""

    day: date

    @classmethod
    def parse(cls, text: str, what: str = "day") -> Day:
        try:
            return cls(date.fromisoformat(text)) if _DAY.match(text or "") else cls._bad(text, what)
        except ValueError:
            return cls._bad(text, what)

    @staticmethod
    def _bad(text: str, what: str) -> Day:
        raise InputError(f"{what} must be YYYY-MM-DD (e.g. 2026-05-14), got {text!r}")

    @property
    def label(self) -> str:
        return self.day.isoformat()

    def __str__(self) -> str:
        return self.label

    @property
    def start(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)

    @property
    def days(self) -> int:
        return 1

    @property
    def intervals(self) -> int:
        return intervals_between(self.start, self.end)

    @property
    def month(self) -> Month:
        return Month.containing(self.day)

    @property
    def previous(self) -> Day:
        return Day(self.day - timedelta(days=1))


def parse_month(text: str, what: str = "month") -> date:
    """`2026-05` -> date(2026, 5, 1); anything else is an InputError."""
    match = _MONTH.match(text or "")
    if not match:
        shaped = re.match(r"^\d{4}-(\d{2})$", text or "")
        if shaped:  # YYYY-MM in form, but not a month: say so, not "must be YYYY-MM"
            raise InputError(f"{what} {text!r}: {shaped.group(1)} is not a month (YYYY-MM with MM 01 to 12)")
        raise InputError(f"{what} must be YYYY-MM (e.g. 2026-05), got {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def add_months(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_label(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def quarter_months(quarter: Quarter | str) -> list[str]:
    """A programming quarter is three consecutive months named by the first (NCC-11)."""
    return Quarter.of(quarter).month_labels


def quarter_bounds(quarter: Quarter | str) -> tuple[datetime, datetime]:
    """[start, end) of the quarter as local datetimes."""
    return Quarter.of(quarter).bounds


def month_bounds(month: Month | str) -> tuple[datetime, datetime]:
    return Month.of(month).bounds


def hours_between(start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(hours=1))


def local_month_of(moment: datetime) -> str:
    """`YYYY-MM` of an instant in Guatemala time (schedulers hand over UTC-aware datetimes)."""
    return Month.containing(local_time(moment)).label


def local_time(moment: datetime) -> datetime:
    """`moment` as naive local Guatemala time: an aware datetime (Airflow's run time is UTC) is
    converted; a naive one is taken as local already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(GUATEMALA).replace(tzinfo=None)


def resolve_period(explicit: str | None, interval_start: datetime | None, what: str = "month") -> str:
    """The period a scheduled run covers: an explicit run parameter wins, else the month in which its
    data interval starts (local time)."""
    if explicit:
        parse_month(explicit, what)
        return explicit
    if interval_start is None:
        raise InputError(f"no {what} given and the run has no data interval")
    return local_month_of(interval_start)


def requested_periods(
    explicit: str | None, event_extras: list[dict], interval_start: datetime | None, what: str = "month"
) -> list[str]:
    """The periods one scheduled run must cover, in order: an explicit run parameter; else every
    period named in the asset events that triggered it (events that arrive before the run starts are
    merged into one run, so none may be dropped); else the month its data interval starts in."""
    if explicit:
        return [resolve_period(explicit, None, what)]
    if event_extras:
        named = [extra.get(what) for extra in event_extras]
        if any(not p for p in named):
            raise InputError(
                f"an asset event that triggered this run does not say which {what} (extra {{'{what}': 'YYYY-MM'}})"
            )
        return sorted({resolve_period(p, None, what) for p in named})
    return [resolve_period(None, interval_start, what)]
