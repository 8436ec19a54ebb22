"""The ex-post (`mayorista expost`, contract ncc11.md "Ex-post"), by hand, on a real DuckLake.

NCC-11 quarter 2026-03 (the flat fixture: March and April in the old bands, May in the bands of
2026-05-01) is published by the real NCC-11 run. The metering tables are published as the metering
ingest publishes them (same tables and columns), with a few hand-made hours:

    D1  P1  consumption, active all along
        P2  consumption, starts 2026-05-16 (mid-quarter: a point of May only)
        G1  generation (participant D1 too): excluded
    D2  no metering point at all: points 0, metered NULL
    D9  a consumption point of a participant that is not an NCC-11 distributor: no rows
    March and May are metered; April is not (no meter_completeness rows): no April rows.

Projection of D1 (3 MWh every hour): March punta 124 h -> 372 MWh, intermedia 372 h -> 1116, valle
248 h -> 744; May (new bands) punta 186 h -> 558, intermedia 279 h -> 837, valle 279 h -> 837.
PMCE of D1 = (CCC + CCS) / total = (2 x 50 + 1 x 100) / 3 = 66.666... USD/MWh in every band."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from pipelines import warehouse
from pipelines.cli import main
from pipelines.ncc11 import expost, job
from pipelines.warehouse import Write
from tests.ncc11.fixtures import QUARTER, write_quarter

PMCE_D1 = 200.0 / 3.0


def _registry() -> pl.DataFrame:
    rows = [
        ("P1", "D1", "consumption", date(2025, 1, 1), None),
        ("P2", "D1", "consumption", date(2026, 5, 16), None),
        ("G1", "D1", "generation", date(2025, 1, 1), None),
        ("X9", "D9", "consumption", date(2025, 1, 1), None),
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "point_id": pl.String,
            "participant": pl.String,
            "kind": pl.String,
            "valid_from": pl.Date,
            "valid_to": pl.Date,
        },
        orient="row",
    )
    return frame.with_columns(
        node=pl.lit("N1"), device_id=pl.format("DEV-{}", "point_id"), source_file=pl.lit("metering_points.csv")
    )


def _hourly(month: str, rows: list[tuple[str, str, str, float, str]]) -> pl.DataFrame:
    """meter_hourly rows (point, hour start, channel, kWh, quality), as the ingest publishes them."""
    frame = pl.DataFrame(rows, schema=["point_id", "hour", "channel", "value", "quality"], orient="row").with_columns(
        hour=pl.col("hour").str.to_datetime("%Y-%m-%d %H:%M", time_unit="us")
    )
    return frame.select(
        "point_id",
        participant=pl.col("point_id").replace({"P1": "D1", "P2": "D1", "G1": "D1", "X9": "D9"}),
        month=pl.lit(month),
        hour="hour",
        channel="channel",
        value=pl.col("value").cast(pl.Float64),
        quality="quality",
        real_intervals=pl.when(pl.col("quality") == "estimated").then(3).otherwise(4).cast(pl.Int32),
        estimated_intervals=pl.when(pl.col("quality") == "estimated").then(1).otherwise(0).cast(pl.Int32),
    )


def _completeness(month: str, rows: list[tuple[str, str, int, int]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=["point_id", "channel", "expected_intervals", "received_intervals"], orient="row")
    return frame.select(
        "point_id",
        participant=pl.col("point_id").replace({"P1": "D1", "P2": "D1", "G1": "D1", "X9": "D9"}),
        kind=pl.when(pl.col("point_id") == "G1").then(pl.lit("generation")).otherwise(pl.lit("consumption")),
        month=pl.lit(month),
        channel="channel",
        expected_intervals=pl.col("expected_intervals").cast(pl.Int64),
        received_intervals=pl.col("received_intervals").cast(pl.Int64),
        completeness_pct=(100.0 * pl.col("received_intervals") / pl.col("expected_intervals")).round(4),
    )


MARCH_HOURS = [
    # punta (old bands 18-21): 400,000 - 10,000 kWh = 390 MWh
    ("P1", "2026-03-02 19:00", "kwh_del", 400_000.0, "complete"),
    ("P1", "2026-03-02 19:00", "kwh_rec", 10_000.0, "complete"),
    # intermedia (old 6-17): 1,116 MWh estimated + 111.6 MWh real = 1,227.6 MWh
    ("P1", "2026-03-02 10:00", "kwh_del", 1_116_000.0, "estimated"),
    ("P1", "2026-03-02 11:00", "kwh_del", 111_600.0, "partial"),
    # valle (old 22-5, across midnight): 600 + 69.6 = 669.6 MWh
    ("P1", "2026-03-02 23:00", "kwh_del", 600_000.0, "complete"),
    ("P1", "2026-03-03 05:00", "kwh_del", 69_600.0, "complete"),
    # excluded: reactive energy, a generation point, another participant
    ("P1", "2026-03-02 19:00", "kvarh_del", 50_000.0, "complete"),
    ("G1", "2026-03-02 19:00", "kwh_del", 999_000.0, "complete"),
    ("X9", "2026-03-02 19:00", "kwh_del", 777_000.0, "complete"),
]
MAY_HOURS = [
    # 10:00 is punta from 2026-05-01 (it was intermedia): 300 MWh; P2's 19:00 punta 258 MWh -> 558
    ("P1", "2026-05-04 10:00", "kwh_del", 300_000.0, "complete"),
    ("P2", "2026-05-20 19:00", "kwh_del", 258_000.0, "estimated"),
    # 21:00 is valle from 2026-05-01 (it was punta): 920.7 MWh
    ("P1", "2026-05-04 21:00", "kwh_del", 920_700.0, "complete"),
    ("G1", "2026-05-04 21:00", "kwh_rec", 500_000.0, "complete"),
]


def _publish_metering(wh: Path, months: dict[str, tuple[list, list]]) -> None:
    writes = [Write("metering_points", _registry(), {"source_file": "metering_points.csv"})]
    for month, (hours, completeness) in months.items():
        writes += [
            Write("meter_hourly", _hourly(month, hours), {"month": month}, ("month",)),
            Write("meter_completeness", _completeness(month, completeness), {"month": month}, ("month",)),
        ]
    warehouse.publish(writes, wh)


MARCH_COMPLETENESS = [
    ("P1", "kwh_del", 2976, 2976),
    ("P1", "kwh_rec", 2976, 2900),
    ("P1", "kvarh_del", 2976, 0),  # not an active-energy channel: not counted
    ("G1", "kwh_del", 2976, 0),  # generation: not counted
]
MAY_COMPLETENESS = [
    ("P1", "kwh_del", 2976, 2976),
    ("P1", "kwh_rec", 2976, 2976),
    ("P2", "kwh_del", 16 * 96, 16 * 96),  # active 16 days: 1,536 intervals
    ("P2", "kwh_rec", 16 * 96, 768),
]


@pytest.fixture
def published(workspace: Path, tmp_path: Path) -> Path:
    job.run(QUARTER, write_quarter(tmp_path / "in"))
    wh = workspace / "warehouse.sqlite"
    _publish_metering(wh, {"2026-03": (MARCH_HOURS, MARCH_COMPLETENESS), "2026-05": (MAY_HOURS, MAY_COMPLETENESS)})
    return wh


def _rows(wh: Path) -> dict[tuple[str, str, str], dict]:
    table = warehouse.query("FROM ncc11_expost", wh)
    return {(r["distributor"], r["month"], r["band"]): r for r in table.to_dicts()}


def test_expost_by_hand(published):
    result = expost.run(QUARTER)
    assert result.metered == ["2026-03", "2026-05"] and result.not_metered == ["2026-04"]
    rows = _rows(published)
    # 2 metered months x 2 distributors x 3 bands; April not metered; D9 is not an NCC-11 distributor
    assert len(rows) == result.rows == 12
    assert {m for _, m, _ in rows} == {"2026-03", "2026-05"}
    expected = {
        # (projected, metered, deviation, deviation %, deviation USD, points, completeness %, estimated %)
        # March punta: 390 - 372 = 18 MWh; 18 / 372 = 4.8387 %; 18 x 66.667 = 1,200 USD
        ("2026-03", "punta"): (372, 390, 18, 100 * 18 / 372, 1200, 1, 100 * 5876 / 5952, 0),
        # intermedia: 1,227.6 - 1,116 = 111.6 (+10 %), 7,440 USD; estimated 1,116 / 1,227.6 = 90.909 %
        ("2026-03", "intermedia"): (1116, 1227.6, 111.6, 10, 7440, 1, 100 * 5876 / 5952, 100 * 1116 / 1227.6),
        # valle: 669.6 - 744 = -74.4 (-10 %), -4,960 USD. Completeness: (2976 + 2900) / (2 x 2976) = 98.72 %
        ("2026-03", "valle"): (744, 669.6, -74.4, -10, -4960, 1, 100 * 5876 / 5952, 0),
        # May punta: 300 (P1, 10:00 in the new bands) + 258 (P2, estimated) = 558: no deviation; 258/558 estimated
        ("2026-05", "punta"): (558, 558, 0, 0, 0, 2, 100 * 8256 / 9024, 100 * 258 / 558),
        # intermedia: nothing metered: 0 - 837 = -837 (-100 %), -55,800 USD; estimated share undefined (0 metered)
        ("2026-05", "intermedia"): (837, 0, -837, -100, -55800, 2, 100 * 8256 / 9024, None),
        # valle: 920.7 (21:00, new bands) - 837 = 83.7 (+10 %), 5,580 USD. Completeness:
        # (2976 + 2976 + 1536 + 768) / (2976 + 2976 + 1536 + 1536) = 8256 / 9024 = 91.49 %
        ("2026-05", "valle"): (837, 920.7, 83.7, 10, 5580, 2, 100 * 8256 / 9024, 0),
    }
    columns = (
        "projected_mwh",
        "metered_mwh",
        "deviation_mwh",
        "deviation_pct",
        "deviation_usd",
        "points",
        "completeness_pct",
        "estimated_pct",
    )
    for (month, band), values in expected.items():
        row = rows[("D1", month, band)]
        got = tuple(row[c] for c in columns)
        assert got == pytest.approx(values, abs=1e-9), (month, band)
        assert row["pmce_usd_mwh"] == pytest.approx(PMCE_D1) and row["quarter"] == QUARTER
    # the energy sums are exact decimals: metered March punta is 390 to the last bit
    assert rows[("D1", "2026-03", "punta")]["metered_mwh"] == 390.0
    # D2 has no consumption point: points 0, metered and what derives from it NULL; projection still there
    for month in ("2026-03", "2026-05"):
        for band in ("punta", "intermedia", "valle"):
            row = rows[("D2", month, band)]
            assert row["points"] == 0 and row["projected_mwh"] > 0
            assert all(row[c] is None for c in columns if c not in ("projected_mwh", "points"))


def test_summary_names_the_month_not_yet_metered(published, capsys):
    assert main(["expost", "--quarter", QUARTER]) == 0
    out = capsys.readouterr().out
    assert "months metered: 2026-03, 2026-05" in out
    assert "not yet metered" in out and "2026-04" in out
    assert "without consumption metering points" in out and "D2" in out


def test_rerun_replaces_the_quarter_and_adds_a_month_once_metered(published):
    expost.run(QUARTER)
    # April is ingested later (one hour of P1 at 19:00, punta: 120 h x 3 = 360 MWh projected)
    _publish_metering(
        published,
        {
            "2026-04": (
                [("P1", "2026-04-06 19:00", "kwh_del", 36_000.0, "complete")],
                [("P1", "kwh_del", 2880, 2880), ("P1", "kwh_rec", 2880, 2880)],
            )
        },
    )
    again = expost.run(QUARTER)
    assert again.not_metered == [] and again.rows == 18
    rows = _rows(published)
    assert len(rows) == 18  # replaced, not added to: 3 months x 2 distributors x 3 bands
    april = rows[("D1", "2026-04", "punta")]
    # 36 MWh against 360: -324 MWh, -90 %, -324 x 66.667 = -21,600 USD; completeness 100 %
    assert (april["metered_mwh"], april["deviation_pct"], april["deviation_usd"], april["completeness_pct"]) == (
        pytest.approx(36.0),
        pytest.approx(-90.0),
        pytest.approx(-21600.0),
        pytest.approx(100.0),
    )
    runs = warehouse.query("SELECT status FROM run_manifests WHERE pipeline = 'expost' AND period = ?", None, [QUARTER])
    assert runs["status"].to_list() == ["published", "published"]


def test_a_quarter_never_published_is_an_error_and_is_recorded(published, capsys):
    assert main(["expost", "--quarter", "2026-06"]) == 2
    err = capsys.readouterr().err
    assert "NCC-11 quarter 2026-06 has not been published" in err and "Traceback" not in err
    failed = warehouse.query("SELECT status, snapshot_id FROM run_manifests WHERE pipeline = 'expost'")
    assert failed.rows() == [("failed", None)]


def test_no_warehouse_at_all_is_an_error_and_creates_nothing(workspace, capsys):
    assert main(["expost", "--quarter", QUARTER]) == 2
    assert "has not been published" in capsys.readouterr().err
    assert not (workspace / "warehouse.sqlite").exists()


def test_no_metering_ingested_yet_publishes_no_rows(workspace, tmp_path):
    job.run(QUARTER, write_quarter(tmp_path / "in"))
    result = expost.run(QUARTER)
    assert result.rows == 0 and result.not_metered == ["2026-03", "2026-04", "2026-05"]
    assert warehouse.query("SELECT count(*) AS n FROM ncc11_expost")["n"][0] == 0
    assert "months not yet metered" in result.summary


def test_hours_are_banded_by_the_versioned_calendar(published):
    """The same clock hour lands in different bands before and after 2026-05-01 (no banding of its own)."""
    expost.run(QUARTER)
    rows = _rows(published)
    # March 10:00 (1,116 MWh, estimated) is intermedia; May 10:00 (300 MWh) is punta
    assert rows[("D1", "2026-03", "intermedia")]["metered_mwh"] == pytest.approx(1227.6)
    assert rows[("D1", "2026-05", "punta")]["metered_mwh"] == pytest.approx(558.0)


def test_hourly_values_outside_the_points_months_are_not_counted(published):
    """meter_hourly of a month is joined by its own month: a point's rows of March count in March only."""
    expost.run(QUARTER)
    total = warehouse.query(
        "SELECT sum(metered_mwh) AS m FROM ncc11_expost WHERE distributor = 'D1' AND month = '2026-03'"
    )["m"][0]
    assert total == pytest.approx(390 + 1227.6 + 669.6)
