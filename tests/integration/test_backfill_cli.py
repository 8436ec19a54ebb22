"""`mayorista backfill`: the periods of a range, the inputs each reads, and a run over the sample data
that keeps going past a failed period, exits non-zero listing it, and never duplicates on re-runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import backfill
from pipelines import warehouse as wh
from pipelines.cli import main
from pipelines.errors import InputError
from tests.integration.stack import ROOT

SAMPLE = ROOT / "data" / "sample"


@pytest.mark.parametrize(
    ("domain", "start", "end", "expected"),
    [
        ("ncc11", "2025-02", "2025-11", ["2025-02", "2025-05", "2025-08", "2025-11"]),  # a tariff year
        ("ncc11", "2025-11", "2026-02", ["2025-11", "2026-02"]),  # across the new year
        ("ncc11", "2026-05", "2026-05", ["2026-05"]),
        ("meters", "2026-03-01", "2026-03-31", ["2026-03"]),  # 31 days, one month re-ingested once
        ("meters", "2025-12-15", "2026-02-01", ["2025-12", "2026-01", "2026-02"]),
        ("delivery", "2026-01", "2026-04", ["2026-01", "2026-02", "2026-03", "2026-04"]),
    ],
)
def test_periods_of_a_range(domain, start, end, expected):
    assert [p.label for p in backfill.period_range(domain, start, end)] == expected


@pytest.mark.parametrize(
    ("domain", "start", "end", "message"),
    [
        ("ncc11", "2025-02", "2025-06", "not a quarter start"),
        ("ncc11", "2025-02-01", "2025-05-01", "quarters as YYYY-MM"),
        ("meters", "2026-04", "2026-03", "before --from"),
        ("meters", "2026-13", "2026-14", "YYYY-MM"),
        ("meters", "2026-02-30", "2026-03-01", "YYYY-MM or YYYY-MM-DD"),
        ("water", "2026-01", "2026-02", "unknown domain"),
    ],
)
def test_bad_ranges_are_refused_before_anything_runs(domain, start, end, message):
    with pytest.raises(InputError, match=message):
        backfill.period_range(domain, start, end)


def test_inputs_are_where_the_dags_read_them(tmp_path):
    assert backfill.input_dir("ncc11", "2026-05", tmp_path) == tmp_path / "ncc11" / "2026-05"
    assert backfill.input_dir("meters", "2026-04", tmp_path) == tmp_path / "smec"
    assert backfill.input_dir("delivery", "2026-04", tmp_path) == tmp_path / "smec"


def _count(warehouse: Path, sql: str) -> int:
    con = wh.connect(warehouse, read_only=True)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


def test_a_failed_quarter_does_not_stop_the_others_and_reruns_replace(tmp_path, capsys):
    wh, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    common = ["--landing", str(SAMPLE), "--warehouse", str(wh), "--lake", str(lake), "--no-progress"]

    # 2025-11 has no inputs in the sample, 2026-02 has: the first fails, the second still publishes
    assert main(["backfill", "ncc11", "--from", "2025-11", "--to", "2026-02", *common]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 quarter(s) published" in err
    assert "2025-11: input directory" in err and "does not exist" in err and "2026-02:" not in err
    energy = "SELECT count(*) FROM ncc11_energy WHERE quarter = '{}'"
    published = _count(wh, energy.format("2026-02"))
    distributors = _count(wh, "SELECT count(DISTINCT distributor) FROM ncc11_energy")
    assert published == 3 * distributors > 0  # one row per distributor and band
    assert _count(wh, energy.format("2025-11")) == 0

    assert main(["backfill", "ncc11", "--from", "2026-02", "--to", "2026-02", *common]) == 0
    assert "1 of 1 quarter(s) published" in capsys.readouterr().out
    assert _count(wh, energy.format("2026-02")) == published  # replaced, not appended


def test_meters_then_delivery_over_days_with_a_progress_bar(tmp_path, capsys):
    wh, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    common = ["--landing", str(SAMPLE), "--warehouse", str(wh), "--lake", str(lake)]

    assert main(["backfill", "meters", "--from", "2026-03-30", "--to", "2026-04-02", *common]) == 0
    captured = capsys.readouterr()
    assert "2 of 2 month(s) published" in captured.out
    assert "backfill meters" in captured.err and "2/2" in captured.err  # the bar, on stderr
    assert "2026-03 ok" in captured.err and "2026-04 ok" in captured.err
    months = _count(wh, "SELECT count(DISTINCT month) FROM meter_completeness WHERE month IN ('2026-03', '2026-04')")
    assert months == 2
    assert _count(wh, "SELECT count(*) - count(DISTINCT (point_id, hour, channel)) FROM meter_hourly") == 0

    assert main(["backfill", "delivery", "--from", "2026-04", "--to", "2026-04", *common, "--no-progress"]) == 0
    assert _count(wh, "SELECT count(*) FROM delivery_compliance WHERE month = '2026-04'") > 0
