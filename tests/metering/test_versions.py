"""What the metering job keeps of every value it did not simply read (MDM edit history): estimates are
versions with their method, run and time, superseded when a real reading arrives or the estimate
changes; readings of intervals that had not ended are quarantined; register reads drive sum_check."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from pipelines.metering import job
from tests.metering.fixtures import query as _q
from tests.metering.fixtures import write_lines, write_registry

NOW = datetime(2026, 11, 1)


def _day(skip: set[str]) -> list[str]:
    """DEV1 kwh_del for every interval of 2 April, 1.0 + 0.1 per interval, without the times in `skip`."""
    rows = []
    for n in range(1, 97):
        hh, mm = divmod(15 * n, 60)
        stamp = f"2026-04-02 {hh:02d}:{mm:02d}" if n < 96 else "2026-04-03 00:00"
        if stamp[-5:] not in skip:
            rows.append(f"DEV1,{stamp},kwh_del,{1.0 + 0.1 * n:.1f}")
    return rows


def test_an_estimate_is_kept_as_superseded_when_the_real_reading_arrives(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    # 10:30 (n=42) and 10:45 (n=43) missing between 10:15 = 5.1 and 11:00 = 5.4: linear 5.2 and 5.3
    first_file = write_lines(root, "PA_0402.csv", _day({"10:30", "10:45"}))
    os.utime(first_file, ns=(10**12, 10**12))
    first = job.ingest_month("2026-04", root, now=NOW)
    assert _q(
        workspace,
        "SELECT strftime(interval_end, '%H:%M'), round(value, 6), method, run_id FROM meter_estimates ORDER BY 1",
    ) == [("10:30", 5.2, "linear", first.run_id), ("10:45", 5.3, "linear", first.run_id)]
    # the real 10:30 arrives, and it is not what the line said: 10:45 is now estimated between 6.0 and 5.4
    write_lines(root, "PA_0402_late.csv", ["DEV1,2026-04-02 10:30,kwh_del,6.0"])
    second = job.ingest_month("2026-04", root, now=NOW)
    versions = _q(
        workspace,
        "SELECT strftime(interval_end, '%H:%M'), round(value, 6), method, run_id, "
        "superseded_by_run, superseded_reason FROM meter_estimates ORDER BY 1, estimated_at",
    )
    assert versions == [
        ("10:30", 5.2, "linear", first.run_id, second.run_id, "a real reading arrived"),
        ("10:45", 5.3, "linear", first.run_id, second.run_id, "re-estimated (linear 5.7)"),
        ("10:45", 5.7, "linear", second.run_id, None, None),
    ]
    # one query lists, for the point and day, the real readings, the estimates and what they replaced
    listing = _q(
        workspace,
        """
        SELECT strftime(interval_end, '%H:%M') t, value, 'real' AS kind, run_id FROM meter_readings
          WHERE point_id = 'P1' AND interval_end::DATE = DATE '2026-04-02' AND strftime(interval_end, '%H:%M') IN ('10:30', '10:45')
        UNION ALL
        SELECT strftime(interval_end, '%H:%M'), round(value, 6), CASE WHEN superseded_by_run IS NULL THEN 'estimate'
               ELSE 'superseded estimate' END, run_id FROM meter_estimates WHERE point_id = 'P1'
        ORDER BY 1, 3""",
    )
    assert [(t, v, kind) for t, v, kind, _ in listing] == [
        ("10:30", 6.0, "real"),
        ("10:30", 5.2, "superseded estimate"),
        ("10:45", 5.7, "estimate"),
        ("10:45", 5.3, "superseded estimate"),
    ]
    # the hourly value of 10:00-11:00 uses the real 6.0 and the standing estimate 5.7
    ((value, quality),) = _q(
        workspace,
        "SELECT value, quality FROM meter_hourly WHERE month = '2026-04' "
        "AND hour = TIMESTAMP '2026-04-02 10:00' AND channel = 'kwh_del'",
    )
    assert value == pytest.approx(5.1 + 6.0 + 5.7 + 5.4) and quality == "estimated"
    # a re-run changes nothing
    job.ingest_month("2026-04", root, now=NOW)
    assert len(_q(workspace, "SELECT * FROM meter_estimates")) == 3


def test_a_reading_of_an_interval_that_has_not_ended_is_quarantined(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(
        root,
        "PA.csv",
        ["DEV1,2026-04-02 10:15,kwh_del,1.0", "DEV1,2026-04-02 10:30,kwh_del,1.0", "DEV1,2026-04-02 10:45,kwh_del,1.0"],
    )
    result = job.ingest_month("2026-04", root, now=datetime(2026, 4, 2, 10, 30))
    assert result.counts["ingested"] == 2 and result.counts["quarantined"] == 1
    assert _q(workspace, "SELECT line, reason FROM quarantine") == [
        (4, "interval_end is in the future (the interval had not ended when the run read it)")
    ]
    # nor is a gap reported after the time of the run
    assert _q(
        workspace,
        "SELECT count(*) FROM vee_findings WHERE rule = 'gap' AND channel = 'kwh_del' "
        "AND interval_end > TIMESTAMP '2026-04-02 10:30'",
    ) == [(0,)]


def test_register_reads_check_the_intervals_between_them(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(root, "PA.csv", _day(set()))
    # the 4 intervals ending 10:15 .. 11:00 sum to 5.1 + 5.2 + 5.3 + 5.4 = 21.0
    (root / "register_reads.csv").write_text(
        "device_id,read_at,channel,value\n"
        "DEV1,2026-04-02 10:00,kwh_del,1000.0\n"
        "DEV1,2026-04-02 11:00,kwh_del,1030.0\n"  # advance 30.0 against 21.0: beyond max(1%, 1 kWh)
        "DEV1,2026-04-02 12:00,kwh_del,1020.0\n"  # backwards: quarantined, never checked
        "DEV9,2026-04-02 12:00,kwh_del,5.0\n"
    )  # unknown device: quarantined
    job.ingest_month("2026-04", root, now=NOW)
    checks = _q(workspace, "SELECT strftime(interval_end, '%H:%M'), detail FROM vee_findings WHERE rule = 'sum_check'")
    # the finding sits on the first interval after the earlier read
    assert len(checks) == 1 and checks[0][0] == "10:15" and "30.0" in checks[0][1] and "21.0" in checks[0][1]
    reasons = dict(_q(workspace, "SELECT line, reason FROM quarantine WHERE source_file = 'register_reads.csv'"))
    assert reasons[4].startswith("register went backwards") and reasons[5].startswith("unknown device")
    job.ingest_month("2026-04", root, now=NOW)  # read again by every run, replaced, never duplicated
    assert _q(workspace, "SELECT count(*) FROM quarantine WHERE source_file = 'register_reads.csv'") == [(2,)]
