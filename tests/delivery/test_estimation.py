"""NCC-14 14.10 estimation: consumption = previous month's kwh_del at the same day and hour + 10%
(last day of the previous month when it is shorter); generation = dispatch records - 5%."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines import warehouse
from pipelines.delivery import estimation
from pipelines.periods import Month
from pipelines.warehouse import Write

REGISTRY = pl.DataFrame(
    {
        "point_id": ["C1", "C2", "G1"],
        "participant": ["ALFA"] * 3,
        "kind": ["consumption", "consumption", "generation"],
        "valid_from": [date(2025, 1, 1), date(2026, 3, 30), date(2025, 1, 1)],  # C2 starts on 30 March
        "valid_to": [None, None, None],
    },
    schema_overrides={"valid_to": pl.Date},
)
MARCH = Month.parse("2026-03")
BEHIND = pl.DataFrame({"point_id": ["C1", "C2", "G1"], "kind": ["consumption", "consumption", "generation"]})


def hours(first: datetime, last: datetime) -> list[datetime]:
    return [first + timedelta(hours=h) for h in range(int((last - first) / timedelta(hours=1)) + 1)]


def february_meter_hourly() -> pl.DataFrame:
    """C1's kwh_del in February 2026 = day + hour/100 (5 Feb 07:00 -> 5.07), except 10 Feb (absent);
    a kwh_rec channel with other values and a January row that must not be used."""
    feb = [h for h in hours(datetime(2026, 2, 1), datetime(2026, 2, 28, 23)) if h.day != 10]
    rows = pl.DataFrame(
        {
            "point_id": "C1",
            "hour": feb,
            "channel": "kwh_del",
            "value": [h.day + h.hour / 100 for h in feb],
            "quality": "measured",
        }
    )
    noise = pl.DataFrame(
        {
            "point_id": ["C1", "C1"],
            "hour": [datetime(2026, 2, 5, 7), datetime(2026, 1, 31, 13)],
            "channel": ["kwh_rec", "kwh_del"],
            "value": [999.0, 777.0],
            "quality": "measured",
        }
    )
    return pl.concat([rows, noise])


@pytest.fixture
def db(workspace: Path) -> Path:
    path = workspace / "warehouse.sqlite"
    warehouse.publish([Write("meter_hourly", february_meter_hourly())], path)
    return path


def test_consumption_previous_month_plus_ten_percent(db: Path) -> None:
    hourly, note = estimation.read_meter_hourly(["C1", "C2"], MARCH, db)
    assert note == "" and hourly.height == 27 * 24  # February without the 10th, kwh_del only
    est, notes = estimation.estimate(
        BEHIND.filter(pl.col("kind") == "consumption"),
        REGISTRY,
        MARCH,
        meter_hourly=hourly,
        meter_hourly_note=note,
        dispatch=None,
    )
    value = dict(zip(est["hour"], est["kwh"]))
    assert value[datetime(2026, 3, 5, 7)] == pytest.approx(5.07 * 1.10)  # 5.577
    assert value[datetime(2026, 3, 28, 0)] == pytest.approx(28.00 * 1.10)  # 30.8
    # February has no 29-31: those days take 28 February at the same hour
    assert value[datetime(2026, 3, 31, 13)] == pytest.approx(28.13 * 1.10)  # 30.943
    assert value[datetime(2026, 3, 29, 23)] == pytest.approx(28.23 * 1.10)
    basis = est.filter(pl.col("hour") == datetime(2026, 3, 31, 13)).row(0, named=True)
    assert basis["basis_hour"] == datetime(2026, 2, 28, 13) and basis["basis_kwh"] == pytest.approx(28.13)
    assert "kwh_del" in basis["method"] and "+10%" in basis["method"]
    # 10 March has no basis (10 Feb absent): 744 - 24 hours estimated, nothing invented
    assert est.filter(pl.col("point_id") == "C1").height == 31 * 24 - 24
    assert est.filter(pl.col("hour").dt.day() == 10).height == 0
    text = dict(zip(notes["point_id"], notes["estimation"]))
    assert text["C1"] == (
        "720 of 744 hours estimated; 24 hours not estimable: meter_hourly has no kwh_del "
        "value for those hours of 2026-02"
    )
    # C2 starts on 30 March (48 hours) and has no February data at all
    assert text["C2"].startswith("0 of 48 hours estimated; 48 hours not estimable")
    assert est.filter(pl.col("point_id") == "C2").height == 0


def test_generation_dispatch_minus_five_percent() -> None:
    march = hours(datetime(2026, 3, 1), datetime(2026, 3, 31, 23))
    dispatch = pl.DataFrame({"point_id": "G1", "hour": march, "kwh": [200.0 if h.hour == 12 else 100.0 for h in march]})
    est, notes = estimation.estimate(
        BEHIND.filter(pl.col("kind") == "generation"),
        REGISTRY,
        MARCH,
        meter_hourly=None,
        meter_hourly_note="",
        dispatch=dispatch,
    )
    value = dict(zip(est["hour"], est["kwh"]))
    assert len(value) == 744
    assert value[datetime(2026, 3, 15, 12)] == pytest.approx(190.0)
    assert value[datetime(2026, 3, 15, 13)] == pytest.approx(95.0)
    assert est["method"].unique().to_list() == ["generation: dispatch_records for the same hour, -5% (NCC-14 14.10)"]
    assert notes["estimation"].to_list() == ["estimated all 744 hours (dispatch records -5%)"]


def test_without_a_basis_nothing_is_estimated_and_it_says_why(workspace: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    warehouse.publish([Write("other_table", pl.DataFrame({"x": [1]}))], empty)
    hourly, note = estimation.read_meter_hourly(["C1"], MARCH, empty)
    assert hourly is None and "no meter_hourly table" in note and "--month 2026-02" in note
    hourly, note = estimation.read_meter_hourly(["C1"], MARCH, tmp_path / "absent.sqlite")
    assert hourly is None and "no warehouse" in note
    est, notes = estimation.estimate(
        BEHIND, REGISTRY, MARCH, meter_hourly=hourly, meter_hourly_note=note, dispatch=None
    )
    assert est.height == 0
    text = dict(zip(notes["point_id"], notes["estimation"]))
    assert text["C1"] == f"0 of 744 hours estimated; 744 hours not estimable: {note}"
    assert text["G1"] == "0 of 744 hours estimated; 744 hours not estimable: no dispatch_records file was given"


def test_duplicated_meter_hourly_is_not_used(workspace: Path) -> None:
    path = workspace / "dup.sqlite"
    row = pl.DataFrame(
        {
            "point_id": ["C1", "C1"],
            "hour": [datetime(2026, 2, 5, 7)] * 2,
            "channel": "kwh_del",
            "value": [1.0, 2.0],
            "quality": "measured",
        }
    )
    warehouse.publish([Write("meter_hourly", row)], path)
    hourly, note = estimation.read_meter_hourly(["C1"], MARCH, path)
    assert hourly is None and "duplicated" in note


def test_previous_month_hour_in_a_long_month() -> None:
    # May after April (30 days): 31 May -> 30 April; 15 May 06:00 -> 15 April 06:00
    frame = pl.DataFrame({"hour": [datetime(2026, 5, 31, 22), datetime(2026, 5, 15, 6)]})
    assert frame.select(estimation.previous_month_hour(Month.parse("2026-05")).alias("basis"))["basis"].to_list() == [
        datetime(2026, 4, 30, 22),
        datetime(2026, 4, 15, 6),
    ]
    # January's previous month is December of the year before
    frame = pl.DataFrame({"hour": [datetime(2027, 1, 31, 0)]})
    assert frame.select(estimation.previous_month_hour(Month.parse("2027-01")).alias("basis"))["basis"].to_list() == [
        datetime(2026, 12, 31, 0)
    ]
