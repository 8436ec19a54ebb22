"""Business days: weekends, GT public holidays (holidays package) and the administrator's own days."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipelines.business_days import BusinessCalendar, nonworking_days
from pipelines.errors import InputError


@pytest.fixture(scope="module")
def cal() -> BusinessCalendar:
    return BusinessCalendar.for_years(2026, 2026)


def test_holy_week_pushes_the_first_seven_business_days_of_april_2026(cal: BusinessCalendar) -> None:
    # 1 Apr Wed; 2-3 Apr Maundy Thursday, Good Friday; 4-5 weekend; then 6..10, 13
    assert cal.first_business_days(2026, 4, 7) == [
        date(2026, 4, 1),
        date(2026, 4, 6),
        date(2026, 4, 7),
        date(2026, 4, 8),
        date(2026, 4, 9),
        date(2026, 4, 10),
        date(2026, 4, 13),
    ]
    assert "Maundy Thursday" in cal.reason(date(2026, 4, 2))
    assert "Good Friday" in cal.reason(date(2026, 4, 3))


def test_an_ordinary_month(cal: BusinessCalendar) -> None:
    # June 2026 starts on a Monday: 1-5 and 8-9
    assert cal.first_business_days(2026, 6, 7) == [date(2026, 6, d) for d in (1, 2, 3, 4, 5, 8, 9)]


def test_weekends_and_next_business_day(cal: BusinessCalendar) -> None:
    assert not cal.is_business_day(date(2026, 4, 18))  # Saturday
    assert cal.reason(date(2026, 4, 19)) == "Sunday"
    assert cal.is_business_day(date(2026, 4, 20))
    assert cal.reason(date(2026, 4, 20)) is None
    assert cal.next_business_day(date(2026, 4, 18)) == date(2026, 4, 20)
    assert cal.next_business_day(date(2026, 4, 2)) == date(2026, 4, 6)  # Thursday holiday -> Monday
    assert cal.next_business_day(date(2026, 4, 21)) == date(2026, 4, 21)


def test_add_business_days_skips_holy_week(cal: BusinessCalendar) -> None:
    # Monday 30 March + 5: 31 Mar, 1 Apr, (2, 3, 4, 5 skipped) 6, 7, 8
    assert cal.add_business_days(date(2026, 3, 30), 5) == date(2026, 4, 8)
    # from a Saturday the count starts on Monday: 20, 21, 22, 23, 24
    assert cal.add_business_days(date(2026, 4, 18), 5) == date(2026, 4, 24)
    plus5 = cal.business_days_after(5)
    assert plus5.filter(plus5["date"] == date(2026, 3, 30))["plus_5"][0] == date(2026, 4, 8)


def test_holiday_moved_to_monday_by_the_package(cal: BusinessCalendar) -> None:
    # Army Day (30 June) is observed on the Monday before in 2026
    assert not cal.is_business_day(date(2026, 6, 29))
    assert cal.is_business_day(date(2026, 6, 30))


def test_administrators_own_days_come_from_config(tmp_path: Path) -> None:
    (tmp_path / "nonworking_days.csv").write_text("date,reason\n2026-04-08,staff training\n")
    cal = BusinessCalendar.for_years(2026, 2026, tmp_path)
    assert cal.reason(date(2026, 4, 8)) == "staff training"
    assert cal.first_business_days(2026, 4, 7)[-2:] == [date(2026, 4, 13), date(2026, 4, 14)]
    assert cal.add_business_days(date(2026, 3, 30), 5) == date(2026, 4, 9)


def test_repository_config_closes_christmas_eve() -> None:
    days = nonworking_days()
    assert date(2026, 12, 24) in days["date"].to_list()
    assert not BusinessCalendar.for_years(2026, 2026).is_business_day(date(2026, 12, 24))  # a Thursday


def test_bad_config_is_an_error_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "nonworking_days.csv").write_text("date,reason\n2026-04-08,ok\n2026-13-01,typo\n")
    with pytest.raises(InputError, match=r"line 3: '2026-13-01'"):
        BusinessCalendar.for_years(2026, 2026, tmp_path)
    with pytest.raises(InputError, match="missing nonworking_days.csv"):
        BusinessCalendar.for_years(2026, 2026, tmp_path / "nowhere")


def test_each_closed_day_says_its_kind_without_words(cal: BusinessCalendar) -> None:
    """closed_kind: what the letters word in their reader's language (a holiday on the administrator's
    list too is named as the holiday); null on a business day."""
    import polars as pl

    kinds = dict(
        cal.days.filter(
            pl.col("date").is_in(
                [
                    date(2026, 4, 1),
                    date(2026, 4, 3),
                    date(2026, 4, 4),
                    date(2026, 4, 5),
                    date(2026, 12, 24),
                    date(2026, 12, 25),
                ]
            )
        )
        .select("date", "closed_kind")
        .rows()
    )
    assert kinds == {
        date(2026, 4, 1): None,
        date(2026, 4, 3): "holiday",  # Good Friday
        date(2026, 4, 4): "saturday",  # Holy Saturday is a holiday too, but a Saturday first
        date(2026, 4, 5): "sunday",
        date(2026, 12, 24): "nonworking",  # config/nonworking_days.csv: Christmas Eve
        date(2026, 12, 25): "holiday",
    }
