"""The landing folder of the metering readings under real operations (reliability issue #19, items 2,
3, 6 and 11): one bad row, one hostile file or one concurrent run must never cost the good rows, nor
the data published before.

Each case spoils a copy of the baseline's inputs, runs the real `mayorista meters ingest` (two at once
for the concurrency case) and checks that every other pipeline's tables and every earlier run are
intact, that no key is duplicated, that the good rows were ingested and that the bad one is in
`quarantine` with its file and line (or, for a file that is not read, named in the run's message)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.faults import support

DEVICE = "DEV-10001"  # PM-001 in the sample registry: active since 2025-01-01, never closed


@pytest.fixture
def landing(baseline: support.Place, tmp_path: Path) -> support.Place:
    """A copy of the baseline with its own copy of the inputs, to add files to."""
    return support.copy_place(baseline, tmp_path / "case", copy_inputs=True)


def _readings(place: support.Place) -> Path:
    return place.inputs / "smec" / "readings"


def _rows(start: str, count: int, channel: str = "kwh_del", base: float = 1.0) -> list[str]:
    """`count` consecutive 15-minute rows of DEVICE from the interval ending at `start` (YYYY-MM-DD HH:MM)."""
    from datetime import datetime, timedelta

    first = datetime.strptime(start, "%Y-%m-%d %H:%M")
    return [
        f"{DEVICE},{(first + timedelta(minutes=15 * i)).strftime('%Y-%m-%d %H:%M')},{channel},{base + i / 1000:.3f}"
        for i in range(count)
    ]


def _write(path: Path, lines: list[str], header: str = "device_id,interval_end,channel,value") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _argv(place: support.Place, month: str) -> list[str]:
    argv = place.argv("meters")
    argv[argv.index("--month") + 1] = month
    return argv


def _q(place: support.Place, sql: str, params: list | None = None) -> list[tuple]:
    con = support._connect(place)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _others_intact(fault: support.Fault, before: support.Fingerprint, place: support.Place) -> support.Fingerprint:
    """Every table but the meters run's own is as it was, every earlier run's rows too; no key twice."""
    after = support.fingerprint(place)
    mine = support.PIPELINES["meters"].tables
    problems = [
        f"{table}: {value[0]} rows before, {after.exact.get(table, ('no table',))[0]} now"
        for table, value in before.exact.items()
        if table not in mine and after.exact.get(table) != value
    ]
    problems += [
        f"run_manifests row of {run} changed or vanished"
        for run, row in before.manifests.items()
        if after.manifests.get(run, {}).get("hash") != row["hash"]
    ]
    problems += support.duplicate_problems(place)
    if problems:
        fault.lost = True
        pytest.fail(f"previous good data NOT intact after {fault.name}:\n  " + "\n  ".join(problems))
    return after


def _readings_count(place: support.Place) -> int:
    return _q(place, "SELECT count(*) FROM meter_readings")[0][0]


# --- item 2: a file's month is decided by its rows, not by its first row ----------------------------------


def test_a_file_whose_first_row_is_far_in_the_future_is_read_for_its_other_rows(landing, baseline_fp, faults):
    readings_before = _readings_count(landing)
    corrections = _write(
        _readings(landing) / "2026-04" / "COMLUZ_2026-04_fix.csv",
        ["DEV-10001,2062-04-10 10:00,kwh_del,9.0", *_rows("2026-04-02 00:15", 2000)],
    )
    label = "readings/2026-04/" + corrections.name
    fault = faults.inject("a correction file whose first row is dated 2062, then 2,000 valid April rows")
    result = support.run_cli(_argv(landing, "2026-04"), landing.env(), cwd=landing.root)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    _others_intact(fault, baseline_fp, landing)
    # the corrections were applied: they replaced the stored readings of the same intervals
    assert _q(
        landing, "SELECT count(*), min(value), max(value) FROM meter_readings WHERE source_file = ?", [label]
    ) == [(2000, 1.0, 2.999)]
    # each correction either replaced a stored reading (kept as superseded) or filled a gap
    replaced = _q(landing, "SELECT count(*) FROM meter_readings_superseded WHERE superseded_by_file = ?", [label])[0][0]
    assert _readings_count(landing) == readings_before + 2000 - replaced
    # the row of 2062 is quarantined with its file and line, not the file deferred
    (line, raw, reason), *more = _q(
        landing, "SELECT line, raw_interval_end, reason FROM quarantine WHERE source_file = ?", [label]
    )
    assert not more and line == 2 and raw == "2062-04-10 10:00" and "future" in reason, (line, raw, reason)
    assert _q(landing, "SELECT month, rows, status FROM landed_files WHERE path = ?", [label]) == [
        ("2026-04", 2000, "ingested")
    ]
    fault.survived = True


# --- item 3: one absurd year never blocks a month ---------------------------------------------------------


def test_a_row_of_year_one_is_quarantined_and_the_rest_ingested(landing, baseline_fp, faults):
    path = _write(
        _readings(landing) / "2026-04" / "COMLUZ_2026-04_resend.csv",
        [*_rows("2026-04-03 00:15", 50), "DEV-10001,0001-01-01 00:15,kwh_del,1.0", *_rows("2026-04-04 00:15", 50)],
    )
    label = "readings/2026-04/" + path.name
    fault = faults.inject("a readings row with interval_end 0001-01-01 00:15 among valid April rows")
    result = support.run_cli(_argv(landing, "2026-04"), landing.env(), cwd=landing.root)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result
    assert "month must be" not in result.stderr, result
    _others_intact(fault, baseline_fp, landing)
    assert _q(landing, "SELECT count(*) FROM meter_readings WHERE source_file = ?", [label]) == [(100,)]
    (line, raw, reason), *more = _q(
        landing, "SELECT line, raw_interval_end, reason FROM quarantine WHERE source_file = ?", [label]
    )
    assert not more and line == 52 and raw == "0001-01-01 00:15" and "earliest" in reason, (line, raw, reason)
    # and the next run of the month is not blocked either
    again = support.run_cli(_argv(landing, "2026-04"), landing.env(), cwd=landing.root)
    assert again.returncode == 0, again
    fault.survived = True


# --- item 6: links out of the landing folder, and lines too long to echo -------------------------------------


def _holding(place: support.Place, needle: str) -> list[str]:
    """The warehouse tables with a row whose text holds `needle`."""
    from pipelines import warehouse

    con = support._connect(place)
    try:
        return [
            table
            for table in sorted(warehouse.tables(con))
            if con.execute(
                f"SELECT count(*) FROM {support._q(table)} t WHERE CAST(t AS VARCHAR) LIKE ?", [f"%{needle}%"]
            ).fetchone()[0]
        ]
    finally:
        con.close()


def test_a_link_to_a_file_outside_the_landing_folder_is_not_read(landing, baseline_fp, tmp_path, faults):
    secret_line = "root:x:0:0:SECRET-7f3a9c-do-not-leak:/root:/bin/bash"
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text(secret_line + "\nbin:x:1:1:bin:/bin:/usr/sbin/nologin\n")
    link = _readings(landing) / "2026-04" / "passwd.csv"
    os.symlink(secret, link)
    good = _write(_readings(landing) / "2026-04" / "COMLUZ_2026-04_late.csv", _rows("2026-04-05 00:15", 96))
    fault = faults.inject("readings/2026-04/passwd.csv -> a file outside the landing folder")
    result = support.run_cli(_argv(landing, "2026-04"), landing.env(), cwd=landing.root)
    text = support.assert_clear_failure(result, "meters")
    assert "readings/2026-04/passwd.csv" in text and "outside the landing folder" in text, result
    assert "SECRET-7f3a9c" not in result.stderr + result.stdout, result
    _others_intact(fault, baseline_fp, landing)
    assert _holding(landing, "SECRET-7f3a9c") == []
    assert _q(landing, "SELECT status FROM landed_files WHERE path = 'readings/2026-04/passwd.csv'") == [("refused",)]
    assert (
        _q(landing, "SELECT count(*) FROM meter_readings WHERE source_file = ?", [f"readings/2026-04/{good.name}"])[0][
            0
        ]
        == 96
    )
    fault.survived = True


def test_a_huge_bad_line_is_echoed_only_as_an_excerpt(landing, baseline_fp, faults):
    bad_header = _write(_readings(landing) / "2026-04" / "wide.csv", _rows("2026-04-06 00:15", 4), header="h" * 150_000)
    long_row = _write(
        _readings(landing) / "2026-04" / "COMLUZ_2026-04_long.csv",
        [*_rows("2026-04-07 00:15", 10), "Z" * 100_000, *_rows("2026-04-08 00:15", 10)],
    )
    fault = faults.inject("a 150 KB header line and a 100 KB data line in readings files")
    result = support.run_cli(_argv(landing, "2026-04"), landing.env(), cwd=landing.root)
    text = support.assert_clear_failure(result, "meters")  # the unreadable file is named: exit 2
    assert "readings/2026-04/wide.csv" in text, result
    assert len(result.stderr) < 20_000, f"{len(result.stderr):,} characters on stderr"
    _others_intact(fault, baseline_fp, landing)
    longest = _q(
        landing,
        "SELECT max(length(reason)), max(greatest(length(raw_device_id), length(raw_interval_end), "
        "length(raw_channel), length(raw_value))) FROM quarantine WHERE source_file IN (?, ?)",
        [f"readings/2026-04/{bad_header.name}", f"readings/2026-04/{long_row.name}"],
    )[0]
    assert longest[0] <= 600 and longest[1] <= 300, longest
    assert _q(landing, "SELECT max(length(reason)) FROM landed_files")[0][0] <= 600
    label = f"readings/2026-04/{long_row.name}"
    assert _q(landing, "SELECT count(*) FROM meter_readings WHERE source_file = ?", [label]) == [(20,)]
    assert _q(landing, "SELECT line FROM quarantine WHERE source_file = ?", [label]) == [(12,)]
    fault.survived = True


# --- item 11: two runs at once ------------------------------------------------------------------------------


def _at_once(place: support.Place, months: list[str]) -> list[support.Result]:
    started = time.monotonic()
    procs = []
    for month in months:
        argv = _argv(place, month)
        proc = subprocess.Popen(
            argv, env=place.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=place.root
        )
        procs.append((proc, argv))
    return [support.finish(proc, argv, started) for proc, argv in procs]


def test_two_ingests_of_different_months_at_once_both_land(landing, baseline_fp, faults):
    may = _write(_readings(landing) / "2026-05" / "COMLUZ_2026-05.csv", _rows("2026-05-02 00:15", 96))
    june = _write(_readings(landing) / "2026-06" / "COMLUZ_2026-06.csv", _rows("2026-06-02 00:15", 96))
    fault = faults.inject("meters ingest of 2026-05 and of 2026-06 started at the same time")
    results = _at_once(landing, ["2026-05", "2026-06"])
    for result in results:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result
    _others_intact(fault, baseline_fp, landing)
    published = _q(
        landing,
        "SELECT period, count(*) FROM run_manifests WHERE pipeline = 'meters' AND status = 'published' "
        "AND period IN ('2026-05', '2026-06') GROUP BY period ORDER BY period",
    )
    assert published == [("2026-05", 1), ("2026-06", 1)], published
    # each file's readings stored once, each file recorded once
    for path, month in ((may, "2026-05"), (june, "2026-06")):
        label = f"readings/{month}/{path.name}"
        assert _q(
            landing, "SELECT month, count(*) FROM meter_readings WHERE source_file = ? GROUP BY month", [label]
        ) == [(month, 96)]
        assert _q(landing, "SELECT month, rows FROM landed_files WHERE path = ?", [label]) == [(month, 96)]
    fault.survived = True


def test_two_ingests_of_the_same_month_at_once_store_the_new_file_once(landing, baseline_fp, faults):
    late = _write(_readings(landing) / "2026-04" / "COMLUZ_2026-04_again.csv", _rows("2026-04-09 00:15", 96))
    label = f"readings/2026-04/{late.name}"
    fault = faults.inject("two meters ingests of 2026-04 started at the same time")
    results = _at_once(landing, ["2026-04", "2026-04"])
    for result in results:  # the second to publish plans again and finds the file already ingested
        assert result.returncode == 0 and "Traceback" not in result.stderr, result
    _others_intact(fault, baseline_fp, landing)
    assert _q(landing, "SELECT count(*) FROM meter_readings WHERE source_file = ?", [label]) == [(96,)]
    assert _q(landing, "SELECT count(*) FROM landed_files WHERE path = ?", [label]) == [(1,)]
    fault.survived = True
