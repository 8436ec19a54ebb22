"""`mayorista meters ingest` end to end on hand-made inputs: every contract rule, the row accounting,
bad files, and idempotent re-ingest. Expected numbers are worked out in the comments."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from pipelines import config, warehouse
from pipelines.errors import InputError
from pipelines.metering import job, vee
from pipelines.periods import Month
from tests.metering.fixtures import (
    REGISTRY,
    landed,
    series,
    standard_month,
    value_of,
    write_lines,
    write_readings,
    write_registry,
)
from tests.metering.fixtures import (
    query as _q,
)


def _published_nothing(workspace: Path) -> None:
    """A failed run: no meter table, only its run_manifests row (status failed, no snapshot, the reason)."""
    tables = warehouse.table_names(workspace / "warehouse.sqlite")
    assert not {t for t in tables if t.startswith("meter_")} and "quarantine" not in tables
    rows = _q(workspace, "SELECT status, snapshot_id, json_extract_string(manifest, '$.reason') FROM run_manifests")
    assert len(rows) == 1 and rows[0][:2] == ("failed", None) and rows[0][2]


def _completeness(workspace: Path) -> dict[tuple[str, str], tuple[int, int, float]]:
    rows = _q(
        workspace,
        "SELECT point_id, channel, expected_intervals, received_intervals, completeness_pct "
        "FROM meter_completeness WHERE month = '2026-04'",
    )
    return {(p, c): (e, r, pct) for p, c, e, r, pct in rows}


def test_complete_month_and_mid_month_validity(tmp_path, workspace):
    standard_month(tmp_path / "in")
    result = job.ingest_month("2026-04", tmp_path / "in")
    c = _completeness(workspace)
    # P1 all April: 30 days * 96; P2 from the 16th: 15 * 96; P3 until the 10th: 10 * 96
    assert c[("P1", "kwh_del")] == (2880, 2880, 100.0)
    assert c[("P2", "kvarh_rec")] == (1440, 1440, 100.0)
    assert c[("P3", "kwh_rec")] == (960, 960, 100.0)
    assert len(c) == 3 * 4
    rows = 4 * (2880 + 1440 + 960)
    assert result.counts["rows_read"] == rows and result.counts["ingested"] == rows
    assert result.counts["quarantined"] == 0 and result.counts["months"] == 1
    # hourly: 4 real intervals per hour, labelled by the hour's start
    (hours,) = _q(workspace, "SELECT count(*) FROM meter_hourly WHERE point_id = 'P1' AND channel = 'kwh_del'")[0:1]
    assert hours == (720,)
    first = _q(
        workspace,
        "SELECT hour, value, quality FROM meter_hourly WHERE point_id = 'P1' AND channel = 'kwh_del' "
        "ORDER BY hour LIMIT 1",
    )[0]
    assert str(first[0]) == "2026-04-01 00:00:00"
    assert first[1] == pytest.approx(sum(value_of("DEV1", i, "kwh_del") for i in (1, 2, 3, 4)))
    assert first[2] == "complete"
    assert "completeness" in result.summary and "rows read" in result.summary


def test_month_boundary_interval_is_labelled_by_its_end(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(
        root,
        "edge.csv",
        [
            "DEV1,2026-04-01 00:00,kwh_del,5",  # covers 31 March 23:45-24:00: March's, not April's business
            "DEV1,2026-04-01 00:15,kwh_del,6",  # first interval of April
            "DEV1,2026-05-01 00:00,kwh_del,7",  # covers 30 April 23:45-24:00: last interval of April
            "DEV1,2026-05-01 00:15,kwh_del,8",  # May's
        ],
    )
    result = job.ingest_month("2026-04", root)
    # the file is read once; each of its rows goes to its own month, and each month is recomputed
    assert result.counts["rows_read"] == 4 and result.counts["files_read"] == 1
    assert {m: c["ingested"] for m, c in result.months.items()} == {"2026-03": 1, "2026-04": 2, "2026-05": 1}
    assert result.counts["quarantined"] == 0
    assert _completeness(workspace)[("P1", "kwh_del")] == (2880, 2, pytest.approx(100 * 2 / 2880, abs=1e-4))
    hours = dict(
        _q(
            workspace,
            "SELECT strftime(hour, '%d %H'), value FROM meter_hourly WHERE point_id = 'P1' AND month = '2026-04'",
        )
    )
    assert hours == {"01 00": 6.0, "30 23": 7.0}
    march = job.ingest_month("2026-03", root)  # nothing new to read: March from its stored reading
    assert march.counts["files_read"] == 0 and march.counts["files_skipped"] == 1
    assert march.months["2026-03"]["readings"] == 1 and march.counts["ingested"] == 0


def test_quarantine_rules_with_file_and_line(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    # read before bad.csv in the same multi-file scan: line numbers must restart per file; CRLF is fine
    (root / "readings").mkdir()
    (root / "readings" / "a_first.csv").write_bytes(
        b"device_id,interval_end,channel,value\r\nDEV1,2026-04-01 00:15,kwh_del,1\r\nDEV1,2026-04-01 00:30,kwh_del,2\r\n"
    )
    write_lines(
        root,
        "bad.csv",
        [
            "DEV1,2026-04-02 10:00,kwh_del,1.5",  # line 2: good
            "DEV9,2026-04-02 10:00,kwh_del,1.5",  # line 3: unknown device
            "DEV1,2026-04-02 10:07,kwh_del,1.5",  # line 4: off the 15-minute grid
            "DEV1,2026-04-02 10:15,kwh_del,n/a",  # line 5: not a number
            "DEV1,2026-04-02 10:30,kwh_xxx,1.5",  # line 6: unknown channel
            "DEV2,2026-04-15 10:00,kwh_del,1.5",  # line 7: P2 starts on the 16th: not registered that day
            "DEV3,2026-04-11 00:15,kwh_del,1.5",  # line 8: P3 retired on the 10th
            "DEV3,2026-04-11 00:00,kwh_del,1.5",  # line 9: covers 10 April 23:45-24:00: still P3's
            "DEV1,2026-04-02 25:00,kwh_del,1.5",  # line 10: unparsable timestamp (the file's other rows are April's)
            "DEV1,,kwh_del,1.5",  # line 11: missing timestamp
            "DEV1,2026-04-02 11:00,kwh_del,",  # line 12: missing value
            "DEV1,2026-04-02 11:15,kwh_del,inf",  # line 13: not a finite number
        ],
    )
    result = job.ingest_month("2026-04", root)
    got = {
        line: reason for line, reason in _q(workspace, "SELECT line, reason FROM quarantine WHERE month = '2026-04'")
    }
    assert got == {
        3: "device_id not in the registry",
        4: "interval_end not on the 15-minute grid",
        5: "value is not a number",
        6: "unknown channel (expected one of kwh_del, kwh_rec, kvarh_del, kvarh_rec)",
        7: "device_id not registered to an active point on that day",
        8: "device_id not registered to an active point on that day",
        10: "unparsable interval_end (expected YYYY-MM-DD HH:MM)",
        11: "missing interval_end",
        12: "missing value",
        13: "value is not a number",
    }
    raw = _q(
        workspace,
        "SELECT source_file, raw_device_id, raw_interval_end, raw_channel, raw_value FROM quarantine WHERE line = 5",
    )
    assert raw == [("readings/bad.csv", "DEV1", "2026-04-02 10:15", "kwh_del", "n/a")]
    assert result.counts == result.counts | {"rows_read": 14, "ingested": 4, "quarantined": 10}
    assert list(result.months) == ["2026-04"]
    # unparsable rows of an April file are not March's
    march = job.ingest_month("2026-03", root)
    assert march.counts["quarantined"] == 0 and march.counts["files_read"] == 0
    assert _q(workspace, "SELECT count(*) FROM quarantine WHERE month = '2026-03'") == [(0,)]


def test_duplicates_count_once_and_disagreeing_ones_are_findings(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(
        root,
        "a.csv",
        ["DEV1,2026-04-02 10:15,kwh_del,1.0", "DEV1,2026-04-02 10:30,kwh_del,2.0", "DEV1,2026-04-02 10:15,kwh_del,1.0"],
    )  # identical duplicate in the same file
    write_lines(root, "b_resend.csv", ["DEV1,2026-04-02 10:30,kwh_del,2.5"])  # differs, landed later: wins
    landed(root / "readings" / "a.csv", 1000)
    landed(root / "readings" / "b_resend.csv", 2000)
    result = job.ingest_month("2026-04", root)
    assert result.counts["ingested"] == 2 and result.counts["duplicates_dropped"] == 1
    assert result.counts["superseded"] == 1  # kept in meter_readings_superseded, not dropped
    assert _completeness(workspace)[("P1", "kwh_del")][1] == 2
    findings = _q(
        workspace,
        "SELECT strftime(interval_end, '%H:%M'), rule, detail FROM vee_findings WHERE rule = 'duplicate_conflict'",
    )
    assert findings == [
        (
            "10:30",
            "duplicate_conflict",
            "2 readings with different values: 2.0 then 2.5 (the one landed last, 2.5, is kept)",
        )
    ]
    assert _q(workspace, "SELECT value, source_file, superseded_by_file FROM meter_readings_superseded") == [
        (2.0, "readings/a.csv", "readings/b_resend.csv")
    ]
    assert _q(
        workspace, "SELECT value FROM meter_hourly WHERE point_id = 'P1' AND strftime(hour, '%d %H') = '02 10'"
    ) == [(3.5,)]


def test_bad_files_do_not_stop_the_others(tmp_path, workspace):
    root = tmp_path / "in"
    standard_month(root)
    write_lines(root, "ragged.csv", ["DEV1,2026-04-03 10:00,kwh_del,1.0,extra", "DEV1,2026-04-03 10:00,kwh_rec,0.5"])
    (root / "readings" / "garbage.csv").write_bytes(b"\xff\xfe\x00binary\x00")
    write_lines(root, "2026-04/PA_dup.csv", ["DEV1,2026-04-03 10:00,kwh_rec,0.5"])
    (root / "readings" / "wrong_header.csv").write_text("meter,when,kwh\nDEV1,2026-04-01 00:15,1\n")
    with pytest.raises(InputError) as err:
        job.ingest_month("2026-04", root)
    message = str(err.value)
    assert "2 readings file(s) could not be read" in message
    assert "garbage.csv" in message and "wrong_header.csv" in message
    # everything else was ingested and published
    assert _completeness(workspace)[("P1", "kwh_del")] == (2880, 2880, 100.0)
    got = _q(workspace, "SELECT source_file, line, reason FROM quarantine ORDER BY source_file, line")
    by_file = {(f, line): reason for f, line, reason in got}
    assert by_file[("readings/ragged.csv", 2)].endswith("expected 4 fields, found 5")
    assert by_file[("readings/garbage.csv", None)].startswith("file cannot be read")
    assert by_file[("readings/wrong_header.csv", None)].startswith("file cannot be read: header lacks column(s)")
    # manifest: rows read = ingested + duplicates + superseded + quarantined, for every file read
    (manifest,) = _q(workspace, "SELECT manifest FROM run_manifests WHERE pipeline = 'meters' AND period = '2026-04'")[
        0
    ]
    counts = json.loads(manifest)["counts"]
    assert counts["rows_read"] == 4 * (2880 + 1440 + 960) + 2 + 1
    assert counts["rows_read"] == (
        counts["ingested"] + counts["duplicates_dropped"] + counts["superseded"] + counts["quarantined"]
    )
    # the value 0.5 landed twice after the original: one replaces it (kept as superseded), one is a duplicate
    assert counts["duplicates_dropped"] == 1 and counts["superseded"] == 1 and counts["quarantined"] == 1
    # the unreadable files are in the ledger as such, and are read again by the next run
    status = dict(_q(workspace, "SELECT path, status FROM landed_files"))
    assert status["readings/garbage.csv"] == "unreadable" and status["readings/ragged.csv"] == "ingested"
    with pytest.raises(InputError):
        job.ingest_month("2026-04", root)
    (manifest,) = _q(
        workspace, "SELECT manifest FROM run_manifests WHERE pipeline = 'meters' ORDER BY snapshot_id DESC LIMIT 1"
    )[0]
    assert json.loads(manifest)["counts"]["files_read"] == 2  # the two unreadable ones, nothing else
    assert _q(workspace, "SELECT count(*) FROM quarantine WHERE line IS NULL") == [(2,)]
    assert _q(workspace, "SELECT count(*) FROM landed_files WHERE status = 'unreadable'") == [(2,)]


def test_reingest_replaces_never_duplicates(tmp_path, workspace):
    root = tmp_path / "in"
    standard_month(root)
    write_lines(root, "bad.csv", ["DEV9,2026-04-02 10:00,kwh_del,1.5"])
    tables = (
        "meter_completeness",
        "meter_hourly",
        "vee_findings",
        "quarantine",
        "metering_points",
        "validation_results",
        "run_manifests",
    )

    def counts():
        return {t: _q(workspace, f"SELECT count(*) FROM {t}")[0][0] for t in tables}

    job.ingest_month("2026-04", root)
    first = counts()
    job.ingest_month("2026-04", root)
    second = counts()
    # every table holds the month once; run_manifests and validation_results keep one set per run
    assert {t: n for t, n in second.items() if t not in ("run_manifests", "validation_results")} == {
        t: n for t, n in first.items() if t not in ("run_manifests", "validation_results")
    }
    assert first["run_manifests"] == 1 and second["run_manifests"] == 2
    assert second["validation_results"] == 2 * first["validation_results"]
    assert first["quarantine"] == 1 and first["metering_points"] == 3
    # the current meter_readings rows live in DuckLake's Parquet files under <lake>/main/meter_readings/month=M/
    assert _q(workspace, "SELECT count(*) FROM meter_readings WHERE month = '2026-04'") == [(4 * (2880 + 1440 + 960),)]
    files = _q(workspace, "SELECT data_file FROM ducklake_list_files('wh', 'meter_readings')")
    assert files and all("/main/meter_readings/month=2026-04/" in f for (f,) in files)
    assert all(Path(f).exists() for (f,) in files)


def test_parquet_and_csv_inputs_agree(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    frame = series("DEV1", 1, 1)
    (root / "readings").mkdir(parents=True)
    frame.with_columns(
        pl.col("interval_end").str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M"), pl.col("value").cast(pl.Float64)
    ).write_parquet(root / "readings" / "typed.parquet")
    write_readings(root, "text.csv", frame)  # the same rows again: all duplicates, all equal
    result = job.ingest_month("2026-04", root)
    assert result.counts["ingested"] == 4 * 96 and result.counts["duplicates_dropped"] == 4 * 96
    assert _q(workspace, "SELECT count(*) FROM vee_findings WHERE rule = 'duplicate_conflict'") == [(0,)]


def test_registry_errors_stop_the_run_before_publishing(tmp_path, workspace):
    root = tmp_path / "in"
    standard_month(root)
    write_registry(root, [*REGISTRY, "P4,PB,consumption,N2,DEV1,S9,vpn_direct,VPN-B,,,10.2.1.4,7701,2026-01-01,"])
    from pipelines.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="_device_overlap"):
        job.ingest_month("2026-04", root)
    _published_nothing(workspace)


def test_sample_april_summary(workspace):
    from tests.conftest import ROOT

    result = job.ingest_month("2026-04", ROOT / "data" / "sample" / "smec")
    c = result.counts
    # March's files are older: read and published too; the resend holds one May reading
    assert list(result.months) == ["2026-03", "2026-04", "2026-05"]
    assert c["duplicates_dropped"] == 1 and c["superseded"] == 1  # the resend repeats one reading, contradicts another
    rules = dict(_q(workspace, "SELECT rule, count(*) FROM vee_findings WHERE month = '2026-04' GROUP BY rule"))
    # against the point's own history (March's last weeks and April's earlier ones): PM-012 reads 0 for 15
    # intervals of a Monday morning (low), the spike is also far above (high), the negative far below (low)
    assert rules == {
        "gap": 16,  # 4 channels x (PM-004, PM-005, PM-010, and PM-054: a frontier point of DIST03)
        "duplicate_conflict": 1,
        "stuck": 1,
        "spike": 1,
        "negative": 1,
        "high_vs_history": 1,
        "low_vs_history": 16,
    }
    reasons = dict(_q(workspace, "SELECT reason, count(*) FROM quarantine WHERE month = '2026-04' GROUP BY reason"))
    assert reasons == {
        "device_id not registered to an active point on that day": 4 * 96,
        "device_id not in the registry": 2,
        "interval_end not on the 15-minute grid": 1,
        "value is not a number": 1,
    }


def test_no_readings_at_all_is_a_clear_error(tmp_path, workspace):
    root = tmp_path / "in"
    write_registry(root)
    with pytest.raises(InputError, match="no readings files"):
        job.ingest_month("2026-04", root)
    _published_nothing(workspace)


def test_a_backfill_hands_each_month_its_history_and_finds_what_separate_runs_find(tmp_path, monkeypatch, caplog):
    """`in_sequence` (the backfill) gives April March's last weeks from March's run instead of reading
    them back: April's findings, estimates and hourly values are those of two separate runs. A run
    published in between (here: March again) makes the next month read the warehouse instead."""
    from tests.conftest import ROOT

    sample = ROOT / "data" / "sample" / "smec"
    handed = "last weeks, handed over by its run"
    queries = {
        "vee_findings": "SELECT * EXCLUDE (participant) FROM {t} WHERE month = '2026-04' ORDER BY ALL",
        "meter_estimates": "SELECT point_id, channel, interval_end, value, method FROM {t} "
        "WHERE month = '2026-04' AND superseded_by_run IS NULL ORDER BY ALL",
        "meter_hourly": "SELECT * FROM {t} WHERE month = '2026-04' ORDER BY ALL",
    }

    def april(name: str, months: list[str], ingest) -> dict[str, pl.DataFrame]:
        monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / name / "warehouse.sqlite"))
        monkeypatch.setenv("MAYORISTA_LAKE", str(tmp_path / name / "lake"))
        for m in months:
            ingest(m, sample)
        with warehouse.open_reader() as src:
            return {t: src.frame(q, t=t) for t, q in queries.items()}

    caplog.set_level("INFO", logger="pipelines.metering.job")
    separate = april("separate", ["2026-03", "2026-04"], job.ingest_month)
    assert handed not in caplog.text
    sequence = job.in_sequence()
    backfill = april("backfill", ["2026-03", "2026-04"], sequence)
    assert "2026-04: the history rules' weeks before: 2026-03's" in caplog.text
    assert separate["vee_findings"].height > 30 and separate["meter_estimates"].height
    assert {r for r in separate["vee_findings"]["rule"]} >= {"high_vs_history", "low_vs_history"}
    for table, frame in separate.items():
        assert backfill[table].equals(frame), table
    # between two runs the weeks wait in a local file; the one handed over is removed once used
    (kept,) = config.scratch_root().glob(f"backfill-history-*.{os.getpid()}")
    assert [p.name for p in kept.iterdir()] == ["2026-04.parquet"]
    del sequence  # and the folder goes with the sequence
    assert not kept.exists()

    caplog.clear()
    sequence = job.in_sequence()
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / "between" / "warehouse.sqlite"))
    monkeypatch.setenv("MAYORISTA_LAKE", str(tmp_path / "between" / "lake"))
    sequence("2026-03", sample)
    job.ingest_month("2026-03", sample)  # published in between: the handed weeks may be stale
    sequence("2026-04", sample)
    assert handed not in caplog.text


def test_a_backfill_reads_a_file_of_its_later_months_once_and_ends_as_separate_runs(tmp_path, monkeypatch, caplog):
    """A late file whose first lines are of May also holds March rows: DEV-30001's active energy from 7
    March on, missing from the sample's March file, at a tenth of its values. Separate runs read it
    through in March's run. A backfill
    going on to May leaves it to May's run (ledger.Ahead) and never reads it through; May's run finds the
    March rows and computes March, April (whose history rules look back at those weeks: its readings are
    now far above their mean) and May again. Both end with the same readings, estimates, findings,
    completeness and hourly values."""
    import shutil

    from tests.conftest import ROOT

    landing = tmp_path / "landing"
    shutil.copytree(ROOT / "data" / "sample" / "smec", landing)
    sent = landing / "readings" / "2026-03" / "DIST01_2026-03.parquet"
    march = pl.read_parquet(sent)
    is_late = (
        (pl.col("device_id") == "DEV-30001") & (pl.col("interval_end").dt.day() >= 7) & (pl.col("channel") == "kwh_del")
    )
    late = march.filter(is_late)
    assert late.height == 25 * 96
    march.filter(~is_late).write_parquet(sent)  # sent first without them
    may = pl.DataFrame(
        {"device_id": ["DEV-30001"], "interval_end": ["2026-05-02 10:15"], "channel": ["kwh_del"], "value": ["5.0"]}
    )
    resend = pl.concat(
        [
            may,
            late.select(
                "device_id",
                pl.col("interval_end").dt.strftime("%Y-%m-%d %H:%M"),
                "channel",
                (pl.col("value") / 10).cast(pl.String),
            ),
        ]
    )
    path = landing / "readings" / "resend" / "DIST01_2026-05-02.csv"
    path.parent.mkdir()
    resend.write_csv(path)
    landed(path, 2_000_000_000)  # landed after the sample's files
    months = ["2026-03", "2026-04", "2026-05"]
    queries = {
        "meter_readings": "SELECT * EXCLUDE (run_id) FROM {t}",
        "meter_estimates": "SELECT month, point_id, channel, interval_end, value, method FROM {t} "
        "WHERE superseded_by_run IS NULL",
        "vee_findings": "SELECT * FROM {t}",
        "meter_completeness": "SELECT * FROM {t}",
        "meter_hourly": "SELECT * FROM {t}",
        "quarantine": "SELECT * FROM {t}",
    }

    def published(name: str, ingest) -> dict[str, pl.DataFrame]:
        monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / name / "warehouse.sqlite"))
        monkeypatch.setenv("MAYORISTA_LAKE", str(tmp_path / name / "lake"))
        for m in months:
            ingest(m, landing)
        with warehouse.open_reader() as src:
            return {t: src.frame(q + " ORDER BY ALL", t=t) for t, q in queries.items()}

    caplog.set_level("INFO", logger="pipelines.metering")
    separate = published("separate", job.ingest_month)
    assert "2026-03: 18 landed file(s): 9 to read" in caplog.text  # the late file read through, for its March rows
    caplog.clear()
    backfill = published("backfill", job.in_sequence(until=Month.parse("2026-05")))
    # March's and April's runs left the late file unread (with April's files in March), May's read it
    assert "2026-03: 18 landed file(s): 8 to read" in caplog.text
    assert "10 for later months of the backfill, none read through" in caplog.text
    assert "2026-04: 18 landed file(s): 9 to read, 8 already ingested, 1 left" in caplog.text
    assert "2026-05: 18 landed file(s): 1 to read" in caplog.text
    point = separate["meter_readings"].filter(pl.col("source_file").str.contains("DIST01_2026-05-02"))["point_id"][0]
    late_rows = separate["meter_readings"].filter(pl.col("source_file") == "readings/resend/DIST01_2026-05-02.csv")
    assert late_rows.height == 1 + 25 * 96
    assert (
        separate["vee_findings"]
        .filter((pl.col("month") == "2026-04") & (pl.col("rule") == "high_vs_history") & (pl.col("point_id") == point))
        .height
    )
    for table, frame in separate.items():
        assert backfill[table].equals(frame), table


def test_weeks_that_cannot_be_kept_hand_nothing_on(tmp_path, caplog):
    """A full disk while a backfill keeps a month's last weeks: nothing is handed on (the next month
    reads the warehouse) and the month, already published, does not fail."""
    from pipelines.metering.month import Carry
    from pipelines.periods import Month

    rows = pl.DataFrame({"series": [1], "j": [-3], "v": [2.5]}, schema=vee.BEFORE_SCHEMA)
    carry = Carry(Month.parse("2026-04"), 28, pl.DataFrame({"point_id": ["PT-A"], "point_idx": [0]}), rows)
    tmp_path.joinpath("2026-04.parquet").symlink_to("/dev/full")  # every write: no space left on device
    assert job._spill(carry, tmp_path) is None
    assert "not kept for the next month's run" in caplog.text and not list(tmp_path.iterdir())
    kept = job._spill(carry, tmp_path / "ok")
    assert kept is not None and pl.read_parquet(kept.rows).equals(rows)
