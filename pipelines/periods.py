"""Quarters and months as the market names them (`YYYY-MM`), and the hours they contain.

Times are naive local Guatemala time (UTC-6 with no daylight saving since 2006), an hour labelled
by its start, which is how the programming files are written."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pipelines.errors import InputError

GUATEMALA = ZoneInfo("America/Guatemala")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(text: str, what: str = "month") -> date:
    """`2026-05` -> date(2026, 5, 1); anything else is an InputError."""
    match = _MONTH.match(text or "")
    if not match:
        raise InputError(f"{what} must be YYYY-MM (e.g. 2026-05), got {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def add_months(first: date, n: int) -> date:
    index = first.year * 12 + first.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_label(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def quarter_months(quarter: str) -> list[str]:
    """A programming quarter is three consecutive months named by the first (NCC-11)."""
    first = parse_month(quarter, "quarter")
    return [month_label(add_months(first, k)) for k in range(3)]


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """[start, end) of the quarter as local datetimes."""
    first = parse_month(quarter, "quarter")
    start = datetime(first.year, first.month, 1)
    end_month = add_months(first, 3)
    return start, datetime(end_month.year, end_month.month, 1)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    first = parse_month(month)
    nxt = add_months(first, 1)
    return datetime(first.year, first.month, 1), datetime(nxt.year, nxt.month, 1)


def hours_between(start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(hours=1))


def local_month_of(moment: datetime) -> str:
    """`YYYY-MM` of an instant in Guatemala time (schedulers hand over UTC-aware datetimes)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(GUATEMALA).replace(tzinfo=None)
    return f"{moment.year:04d}-{moment.month:02d}"


def resolve_period(explicit: str | None, interval_start: datetime | None, what: str = "month") -> str:
    """The period a scheduled run covers: an explicit run parameter wins, else the month in which its
    data interval starts (local time)."""
    if explicit:
        parse_month(explicit, what)
        return explicit
    if interval_start is None:
        raise InputError(f"no {what} given and the run has no data interval")
    return local_month_of(interval_start)


def requested_periods(explicit: str | None, event_extras: list[dict], interval_start: datetime | None,
                      what: str = "month") -> list[str]:
    """The periods one scheduled run must cover, in order: an explicit run parameter; else every
    period named in the asset events that triggered it (events that arrive before the run starts are
    merged into one run, so none may be dropped); else the month its data interval starts in."""
    if explicit:
        return [resolve_period(explicit, None, what)]
    if event_extras:
        named = [extra.get(what) for extra in event_extras]
        if any(not p for p in named):
            raise InputError(f"an asset event that triggered this run does not say which {what} (extra {{'{what}': 'YYYY-MM'}})")
        return sorted({resolve_period(p, None, what) for p in named})
    return [resolve_period(None, interval_start, what)]
