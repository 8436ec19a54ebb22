"""Periods (quarters, months, the period a scheduled run covers) and the versioned band calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines import bands, periods
from pipelines.errors import InputError


def test_quarter_is_three_months_named_by_the_first():
    assert periods.quarter_months("2026-11") == ["2026-11", "2026-12", "2027-01"]
    start, end = periods.quarter_bounds("2026-11")
    assert (start, end) == (datetime(2026, 11, 1), datetime(2027, 2, 1))
    assert periods.hours_between(start, end) == (30 + 31 + 31) * 24


@pytest.mark.parametrize("bad", ["2026-3", "2026-13", "26-03", "2026/03", "", "2026-03-01"])
def test_malformed_periods_are_rejected(bad):
    with pytest.raises(InputError, match="YYYY-MM"):
        periods.quarter_months(bad)


def test_scheduled_run_period_is_the_local_month_of_its_interval_start():
    # Airflow hands over UTC: 2026-02-01 00:00 in Guatemala is 06:00 UTC; 05:00 UTC is still January there
    assert periods.resolve_period(None, datetime(2026, 2, 1, 6, tzinfo=UTC)) == "2026-02"
    assert periods.resolve_period(None, datetime(2026, 2, 1, 5, tzinfo=UTC)) == "2026-01"
    assert periods.resolve_period("2025-11", datetime(2026, 2, 1, 6, tzinfo=UTC)) == "2025-11"
    with pytest.raises(InputError):
        periods.resolve_period("2025-1", None)


def _calendar(tmp_path: Path, rows: list[tuple]) -> Path:
    path = tmp_path / "bands.csv"
    pl.DataFrame(rows, schema=["valid_from", "valid_to", "band", "hour_from", "hour_to"], orient="row").write_csv(path)
    return path


def test_the_shipped_calendar_puts_every_hour_in_one_band():
    calendar = bands.load_calendar()
    hours = bands.hour_bands(datetime(2025, 1, 1), datetime(2027, 1, 1), calendar)
    assert hours.height == periods.hours_between(datetime(2025, 1, 1), datetime(2027, 1, 1))
    per_day = hours.group_by(pl.col("hour").dt.date().alias("day"), "band").len()
    old = per_day.filter(pl.col("day") == datetime(2026, 4, 30).date()).sort("band")
    new = per_day.filter(pl.col("day") == datetime(2026, 5, 1).date()).sort("band")
    assert dict(old.select("band", "len").iter_rows()) == {"intermedia": 12, "punta": 4, "valle": 8}
    assert dict(new.select("band", "len").iter_rows()) == {"intermedia": 9, "punta": 6, "valle": 9}


def test_a_user_can_change_a_band_in_the_file(tmp_path):
    path = _calendar(
        tmp_path,
        [
            ("2000-01-01", "", "punta", 17, 21),
            ("2000-01-01", "", "intermedia", 6, 16),
            ("2000-01-01", "", "valle", 22, 5),
        ],
    )
    hours = bands.hour_bands(datetime(2026, 6, 1), datetime(2026, 6, 2), bands.load_calendar(path))
    assert hours.filter(pl.col("hour").dt.hour() == 17)["band"].to_list() == ["punta"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                ("2000-01-01", "", "pico", 18, 21),
                ("2000-01-01", "", "intermedia", 6, 17),
                ("2000-01-01", "", "valle", 22, 5),
            ],
            "unknown band",
        ),
        (
            [
                ("2000-01-01", "", "punta", 18, 21),
                ("2000-01-01", "", "intermedia", 6, 16),
                ("2000-01-01", "", "valle", 22, 5),
            ],
            "exactly one band",
        ),
        (
            [
                ("2000-01-01", "", "punta", 18, 24),
                ("2000-01-01", "", "intermedia", 6, 17),
                ("2000-01-01", "", "valle", 22, 5),
            ],
            "hours must be 0-23",
        ),
        ([("2000-01-01", "2020-12-31", "punta", 0, 23), ("2020-06-01", "", "valle", 0, 23)], "overlap"),
    ],
)
def test_a_broken_calendar_is_rejected(tmp_path, rows, message):
    with pytest.raises(InputError, match=message):
        bands.load_calendar(_calendar(tmp_path, rows))


def test_an_hour_with_no_regime_in_force_is_an_error(tmp_path):
    path = _calendar(tmp_path, [("2026-01-01", "", "valle", 0, 23)])
    with pytest.raises(InputError, match="no band in force"):
        bands.hour_bands(datetime(2025, 12, 31, 23), datetime(2026, 1, 1, 2), bands.load_calendar(path))


def test_an_asset_triggered_run_covers_every_period_its_events_name():
    extras = [{"quarter": "2026-05"}, {"quarter": "2026-02"}, {"quarter": "2026-05"}]
    assert periods.requested_periods(None, extras, None, "quarter") == ["2026-02", "2026-05"]
    assert periods.requested_periods("2025-11", extras, None, "quarter") == ["2025-11"]
    interval_start = datetime(2026, 5, 1, 6, tzinfo=UTC)
    assert periods.requested_periods(None, [], interval_start, "quarter") == ["2026-05"]
    with pytest.raises(InputError, match="does not say which quarter"):
        periods.requested_periods(None, [{"other": 1}], None, "quarter")


def test_month_quarter_and_day_values():
    from datetime import date, datetime

    from pipelines.periods import Day, Month, Quarter

    m = Month.parse("2026-02")
    assert (m.label, m.start, m.end, m.days, m.intervals, m.last_day) == (
        "2026-02",
        datetime(2026, 2, 1),
        datetime(2026, 3, 1),
        28,
        28 * 96,
        date(2026, 2, 28),
    )
    assert m.previous.label == "2026-01" and Month.parse("2026-01").previous.label == "2025-12"
    q = Quarter.parse("2026-11")
    assert q.month_labels == ["2026-11", "2026-12", "2027-01"] and q.end == datetime(2027, 2, 1)
    assert q.previous.label == "2026-08" and q.hours == (30 + 31 + 31) * 24
    assert Day.parse("2026-03-31").month == Month.parse("2026-03")
    with pytest.raises(Exception, match="YYYY-MM"):
        Month.parse("2026-13")


def test_interval_arithmetic_in_one_place():
    april = periods.Month.parse("2026-04")
    Month = periods.Month  # noqa: N806
    assert periods.intervals_between(april.start, april.end) == april.intervals == 2880
    assert periods.intervals_between(april.start, datetime(2026, 4, 1, 0, 29)) == 1  # floored
    # an interval belongs to the month it starts in: midnight closes the month before
    assert Month.of_interval_end(datetime(2026, 5, 1, 0, 0)) == april
    assert Month.of_interval_end(datetime(2026, 5, 1, 0, 15)) == april.next
    assert april.plus(-4) == Month.parse("2025-12") and april.plus(9) == Month.parse("2027-01")
