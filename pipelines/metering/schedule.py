"""Which month a daily `meter_readings` run ingests.

A daily run ingests its day's month: it reads the files that landed since the last run (the ledger,
pipelines/metering/ledger.py, knows which) and recomputes the month from its stored readings plus the
new rows. Its cost is the new files plus one month of stored readings, whatever the history; a late or
corrected file of an earlier month is read by the next run and that month recomputed with it."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipelines.errors import InputError
from pipelines.periods import Day, Month, local_time


def run_month(month: str | None, day: str | None, interval_start: datetime | None) -> Month:
    """`month` param wins, then `day` (YYYY-MM-DD), else the local day the run's data interval starts."""
    if month:
        return Month.parse(month)
    if day:
        return Day.parse(day).month
    if interval_start is None:
        raise InputError("no month or day given and the run has no data interval")
    return Month.containing(local_time(interval_start))


def closes_month(month: str | None, interval_start: datetime | None) -> bool:
    """Whether a run completes its month, so that month's delivery check may start: a run for an
    explicit `month` (a whole-month re-ingest), or the daily run of the month's last day."""
    if month:
        return True
    if interval_start is None:
        return False
    day = local_time(interval_start)
    return (day + timedelta(days=1)).month != day.month
