"""The ledger of landed files and the resend rule (metering contract): every landed file is read once,
a changed file is read again as a new version, the later landing wins and what it replaced stays
queryable, and a month built from daily files equals the same month from one file."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from pipelines.metering import job, landing
from pipelines.periods import Month
from tests.metering.fixtures import (
    landed,
    series,
    standard_month,
    value_of,
    write_lines,
    write_readings,
    write_registry,
)
from tests.metering.fixtures import query as _q


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files each run parses (a spy around the real staging step)."""
    seen: list[str] = []
    real = job.stage

    def spy(month, files, indexes, *args, **kwargs):
        seen.extend(files[i].name for i in indexes)
        return real(month, files, indexes, *args, **kwargs)

    monkeypatch.setattr(job, "stage", spy)
    return seen


def test_a_file_is_parsed_once_and_skipped_afterwards(tmp_path, workspace, parses):
    root = tmp_path / "in"
    standard_month(root)
    first = job.ingest_month("2026-04", root)
    assert sorted(parses) == ["PA.csv", "PB.csv"] and first.counts["files_read"] == 2
    parses.clear()
    again = job.ingest_month("2026-04", root)
    assert parses == [] and again.counts["files_read"] == 0 and again.counts["files_skipped"] == 2
    # a touched file (same content, new time) is still the same file
    landed(root / "readings" / "2026-04" / "PA.csv", 5000)
    third = job.ingest_month("2026-04", root)
    assert parses == [] and third.counts["files_skipped"] == 2
    # the month's state comes from the stored readings: the same as after the first run
    assert _q(workspace, "SELECT count(*), sum(received_intervals) FROM meter_completeness") == [
        (12, 4 * (2880 + 1440 + 960))
    ]
    assert _q(workspace, "SELECT count(*) FROM meter_readings") == [(4 * (2880 + 1440 + 960),)]
    ledger = _q(workspace, "SELECT path, month, status, rows FROM landed_files ORDER BY path")
    assert ledger == [
        ("readings/2026-04/PA.csv", "2026-04", "ingested", 4 * (2880 + 1440)),
        ("readings/2026-04/PB.csv", "2026-04", "ingested", 4 * 960),
    ]


def test_a_changed_file_is_read_again_as_a_new_version(tmp_path, workspace, parses):
    root = tmp_path / "in"
    write_registry(root)
    path = write_lines(root, "PA_0402.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0", "DEV1,2026-04-02 10:30,kwh_del,2.0"])
    landed(path, 1000)
    job.ingest_month("2026-04", root)
    path.write_text(
        "device_id,interval_end,channel,value\nDEV1,2026-04-02 10:15,kwh_del,1.0\n"
        "DEV1,2026-04-02 10:30,kwh_del,2.2\nDEV1,2026-04-02 10:45,kwh_del,3.0\n"
    )
    landed(path, 2000)
    parses.clear()
    result = job.ingest_month("2026-04", root)
    assert parses == ["PA_0402.csv"]
    # 10:15 unchanged (a duplicate), 10:30 replaced, 10:45 new
    assert (result.counts["ingested"], result.counts["duplicates_dropped"], result.counts["replaced_stored"]) == (
        2,
        1,
        1,
    )
    assert _q(workspace, "SELECT strftime(interval_end, '%H:%M'), value FROM meter_readings ORDER BY 1") == [
        ("10:15", 1.0),
        ("10:30", 2.2),
        ("10:45", 3.0),
    ]
    assert _q(workspace, "SELECT count(DISTINCT sha256), count(*) FROM landed_files") == [(2, 2)]


def test_a_resent_day_wins_by_landing_order_not_by_name(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    original = write_readings(root, "PA_2026-04-02.csv", series("DEV1", 2, 2, channels=("kwh_del",)))
    landed(original, 1000)
    first = job.ingest_month("2026-04", root)
    # the participant re-sends the day with one corrected value, under a name that sorts FIRST
    resend = write_lines(root, "AA_resend_PA_2026-04-02.csv", ["DEV1,2026-04-02 10:15,kwh_del,99.5"])
    landed(resend, 900)  # even an older modification time: it was first seen by a later run
    second = job.ingest_month("2026-04", root)
    i = 96 + 41  # 2026-04-02 10:15 is interval 137 of April
    assert _q(
        workspace,
        "SELECT value, source_file, run_id FROM meter_readings WHERE interval_end = TIMESTAMP '2026-04-02 10:15'",
    ) == [(99.5, "readings/AA_resend_PA_2026-04-02.csv", second.run_id)]
    # the replaced reading is kept with the file and run that brought it, and who replaced it
    assert _q(
        workspace,
        "SELECT value, source_file, source_run, superseded_by_file, superseded_by_run FROM meter_readings_superseded",
    ) == [
        (
            value_of("DEV1", i, "kwh_del"),
            "readings/PA_2026-04-02.csv",
            first.run_id,
            "readings/AA_resend_PA_2026-04-02.csv",
            second.run_id,
        )
    ]
    # a conflict stays a VEE finding, and the hourly value uses the resent reading
    (detail,) = _q(workspace, "SELECT detail FROM vee_findings WHERE rule = 'duplicate_conflict'")[0]
    assert "99.5" in detail and "is kept" in detail
    hour = [value_of("DEV1", j, "kwh_del") for j in (137, 138, 139, 140)]
    hour[0] = 99.5
    ((value,),) = _q(
        workspace, "SELECT value FROM meter_hourly WHERE hour = TIMESTAMP '2026-04-02 10:00' AND channel = 'kwh_del'"
    )
    assert value == pytest.approx(sum(hour))
    # a re-run changes nothing
    job.ingest_month("2026-04", root)
    assert _q(workspace, "SELECT count(*) FROM meter_readings") == [(96,)]
    assert _q(workspace, "SELECT count(*) FROM meter_readings_superseded") == [(1,)]


def test_within_one_run_the_newer_file_wins(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    landed(write_lines(root, "B_original.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"]), 1000)
    landed(write_lines(root, "A_resend.csv", ["DEV1,2026-04-02 10:15,kwh_del,2.0"]), 2000)
    job.ingest_month("2026-04", root)
    assert _q(workspace, "SELECT value FROM meter_readings") == [(2.0,)]
    assert _q(workspace, "SELECT value, superseded_by_file FROM meter_readings_superseded") == [
        (1.0, "readings/A_resend.csv")
    ]


def _month_tables(workspace: Path) -> dict[str, list[tuple]]:
    return {
        "completeness": _q(
            workspace,
            "SELECT point_id, channel, expected_intervals, received_intervals, completeness_pct "
            "FROM meter_completeness ORDER BY ALL",
        ),
        "findings": _q(
            workspace, "SELECT point_id, channel, interval_end, rule, detail FROM vee_findings ORDER BY ALL"
        ),
        "hourly": _q(
            workspace, "SELECT point_id, channel, hour, round(value, 6), quality FROM meter_hourly ORDER BY ALL"
        ),
    }


def test_a_month_of_daily_files_equals_one_monthly_file(tmp_path, monkeypatch):
    """Daily runs, each landing one more day (with a gap, a spike and a stuck register along the way),
    end with the same completeness, findings and hourly values as one run over a monthly file."""
    skip = set(range(96 * 4 + 10, 96 * 4 + 14)) | set(range(96 * 9 + 1, 96 * 9 + 40))  # a short and a long gap
    full = pl.concat([series("DEV1", 1, 30, skip=skip), series("DEV2", 16, 30), series("DEV3", 1, 10)])
    full = full.with_columns(  # a spike and a stuck register
        value=pl.when((pl.col("device_id") == "DEV1") & (pl.col("interval_end") == "2026-04-06 12:00"))
        .then(pl.lit("500.0"))
        .when(
            (pl.col("device_id") == "DEV3")
            & (pl.col("interval_end") >= "2026-04-03 00:15")
            & (pl.col("interval_end") <= "2026-04-03 06:00")
            & (pl.col("channel") == "kwh_rec")
        )
        .then(pl.lit("7.0"))
        .otherwise(pl.col("value"))
    )
    day = pl.col("interval_end").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M").dt.offset_by("-15m").dt.day()

    monthly = tmp_path / "monthly"
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(monthly / "warehouse.sqlite"))
    monkeypatch.setenv("MAYORISTA_LAKE", str(monthly / "lake"))
    write_registry(monthly / "in")
    write_readings(monthly / "in", "all.csv", full)
    job.ingest_month("2026-04", monthly / "in")
    expected = _month_tables(monthly)

    daily = tmp_path / "daily"
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(daily / "warehouse.sqlite"))
    monkeypatch.setenv("MAYORISTA_LAKE", str(daily / "lake"))
    write_registry(daily / "in")
    for d in range(1, 31, 5):  # five days per run, 6 runs: the short gap (day 5) ends the first run's
        for dd in range(d, d + 5):  # files, the spike (day 6) starts the second's
            write_readings(daily / "in", f"2026-04/{dd:02d}.csv", full.filter(day == dd))
        result = job.ingest_month("2026-04", daily / "in")
        assert result.counts["files_read"] == 5
    assert _month_tables(daily) == expected
    assert _q(daily, "SELECT count(*) FROM meter_readings") == [(full.height,)]


def test_later_months_are_left_for_their_runs_and_missing_files_are_reported(tmp_path, workspace, parses):
    root = tmp_path / "in"
    standard_month(root)
    write_lines(root, "2026-05/PA.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0"])
    march = job.ingest_month("2026-03", root)
    assert parses == [] and march.counts["files_left_for_later_months"] == 3
    april = job.ingest_month("2026-04", root)
    assert sorted(parses) == ["PA.csv", "PB.csv"] and april.counts["files_left_for_later_months"] == 1
    (root / "readings" / "2026-04" / "PB.csv").unlink()
    again = job.ingest_month("2026-04", root)
    assert "gone from the landing folder" in again.summary and "readings/2026-04/PB.csv" in again.summary
    assert again.counts["files_missing"] == 1
    assert _q(workspace, "SELECT count(*) FROM meter_readings WHERE point_id = 'P3'") == [(4 * 960,)]


def test_a_file_that_changes_while_read_is_not_recorded(tmp_path, workspace, monkeypatch):
    root = tmp_path / "in"
    write_registry(root)
    path = write_lines(root, "PA.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"])
    real = job.stage

    def still_writing(month, files, indexes, *args, **kwargs):
        staged = real(month, files, indexes, *args, **kwargs)
        with open(path, "a") as fh:  # PrimeRead appends while the run reads
            fh.write("DEV1,2026-04-02 10:30,kwh_del,2.0\n")
        return staged

    monkeypatch.setattr(job, "stage", still_writing)
    first = job.ingest_month("2026-04", root)
    assert first.counts["files_changed_while_read"] == 1 and first.counts["ingested"] == 0
    assert "changed while being read" in first.summary
    assert _q(workspace, "SELECT count(*) FROM landed_files") == [(0,)]
    monkeypatch.setattr(job, "stage", real)
    second = job.ingest_month("2026-04", root)
    assert second.counts["ingested"] == 2
    assert _q(workspace, "SELECT path, rows FROM landed_files") == [("readings/PA.csv", 2)]


def test_month_hint_reads_only_the_first_lines(tmp_path):
    path = write_lines(tmp_path, "x.csv", ["DEV1,2026-05-01 00:00,kwh_del,1", "DEV1,2026-05-01 00:15,kwh_del,1"])
    assert landing.first_lines(path)[0] == Month.parse("2026-04")  # the interval ending at midnight is April's
    bad = write_lines(tmp_path, "y.csv", ["DEV1,yesterday,kwh_del,1"])
    assert landing.first_lines(bad)[0] is None


def test_a_known_file_is_not_even_hashed_again(tmp_path, workspace, monkeypatch):
    """Modification times with nanoseconds (as the disk gives them) match the ledger's microseconds."""
    root = tmp_path / "in"
    standard_month(root)
    os.utime(root / "readings" / "2026-04" / "PA.csv", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    job.ingest_month("2026-04", root)
    from pipelines.metering import ledger

    hashed: list[Path] = []
    real = ledger.sha256
    monkeypatch.setattr(ledger, "sha256", lambda p: hashed.append(p) or real(p))
    again = job.ingest_month("2026-04", root)
    assert hashed == [] and again.counts["files_skipped"] == 2


def test_a_file_of_a_later_month_is_deferred_in_the_ledger_then_read_by_its_month(tmp_path, workspace, parses):
    root = tmp_path / "in"
    standard_month(root)
    write_lines(root, "2026-05/PA.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0"])
    april = job.ingest_month("2026-04", root)
    assert april.counts["files_left_for_later_months"] == 1 and "PA.csv" in parses
    deferred = "SELECT path, month, status FROM landed_files WHERE status = 'deferred'"
    assert _q(workspace, deferred) == [("readings/2026-05/PA.csv", "2026-05", "deferred")]
    parses.clear()
    job.ingest_month("2026-04", root)  # nothing new: the deferred row stays, once
    assert parses == [] and _q(workspace, deferred) == [("readings/2026-05/PA.csv", "2026-05", "deferred")]
    may = job.ingest_month("2026-05", root)
    assert parses == ["PA.csv"] and may.counts["files_read"] == 1
    assert _q(workspace, "SELECT path, month, status FROM landed_files WHERE path LIKE '%2026-05%'") == [
        ("readings/2026-05/PA.csv", "2026-05", "ingested")
    ]
