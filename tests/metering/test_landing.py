"""The landing folder as the plan sees it: links, months decided by rows (not by the first row), the
floor of accepted timestamps and the excerpts echoed in reasons. No warehouse: pure plan and staging."""

from __future__ import annotations

import os
from datetime import datetime

import polars as pl

from pipelines.metering import landing, ledger, readings
from pipelines.periods import Month
from tests.metering.fixtures import stage, write_lines, write_registry

NOW = datetime(2026, 12, 6, 12, 0)


def test_links_outside_the_landing_folder_and_fifos_are_refused_links_inside_are_read(tmp_path):
    root = tmp_path / "in"
    inside = write_lines(root, "2026-04/PA.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"])
    outside = tmp_path / "secret.csv"
    outside.write_text("top secret\n")
    os.symlink(outside, root / "readings" / "2026-04" / "passwd.csv")
    os.symlink(inside, root / "readings" / "alias.csv")
    os.symlink(tmp_path / "nothing.csv", root / "readings" / "dangling.csv")
    os.mkfifo(root / "readings" / "pipe.csv")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "readings" / "linked")
    (tmp_path / "elsewhere" / "x.csv").write_text("device_id,interval_end,channel,value\n")
    files, refused = landing.landing(root)
    names = lambda paths: sorted(p.relative_to(root / "readings").as_posix() for p in paths)  # noqa: E731
    assert names(files) == ["2026-04/PA.csv", "alias.csv"]
    assert names(refused) == ["2026-04/passwd.csv", "dangling.csv", "pipe.csv"] + (
        ["linked/x.csv"] if any("linked" in str(p) for p in refused) else []
    )
    assert "outside the landing folder" in refused[root / "readings" / "2026-04" / "passwd.csv"]
    plan = ledger.plan(root, Month.parse("2026-04"), pl.DataFrame(schema=ledger.SCHEMA), now=NOW)
    assert "readings/2026-04/passwd.csv" in plan.refused and len(plan.files) == 2


def test_the_listing_walks_plain_folders_skips_hidden_ones_and_stats_each_file_once(tmp_path):
    """`list_landing` names every readings file under `readings/` with the size and modification time the
    file system gives, in path order; hidden or temporary names, at any depth, are not readings."""
    root = tmp_path / "in"
    kept = [
        write_lines(root, "participant=B/day=2026-04-02/B.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"]),
        write_lines(root, "participant=A/day=2026-04-01/A.csv", ["DEV1,2026-04-01 10:15,kwh_del,2.0"]),
        write_lines(root, "folder.csv/inside.csv", ["DEV1,2026-04-03 10:15,kwh_del,3.0"]),
    ]
    write_lines(root, ".hidden/x.csv", ["DEV1,2026-04-01 10:15,kwh_del,1.0"])
    write_lines(root, "participant=A/_tmp/x.csv", ["DEV1,2026-04-01 10:15,kwh_del,1.0"])
    write_lines(root, "participant=A/.partial.csv", ["DEV1,2026-04-01 10:15,kwh_del,1.0"])
    (root / "readings" / "notes.txt").write_text("not a readings file\n")
    os.utime(kept[0], ns=(7 * 10**9, 7 * 10**9))
    found = landing.list_landing(root)
    assert found.names == [
        "folder.csv/inside.csv",
        "participant=A/day=2026-04-01/A.csv",
        "participant=B/day=2026-04-02/B.csv",
    ]
    assert list(found.files) == [root / "readings" / n for n in found.names] and found.refused == {}
    by_name = dict(zip(found.names, zip(found.sizes, found.mtimes)))
    for path in kept:
        info = path.stat()
        assert by_name[path.relative_to(root / "readings").as_posix()] == (info.st_size, info.st_mtime_ns)
    assert found.mtimes[2] == 7 * 10**9
    assert landing.list_landing(tmp_path / "nowhere").names == []


def test_a_file_is_left_for_a_later_month_only_when_all_its_valid_rows_are_later(tmp_path):
    root = tmp_path / "in"
    write_lines(root, "far.csv", ["DEV1,2062-04-10 10:00,kwh_del,1.0", "DEV1,2026-04-02 10:15,kwh_del,1.0"])
    write_lines(root, "old.csv", ["DEV1,0001-01-01 00:15,kwh_del,1.0", "DEV1,2026-04-02 10:15,kwh_del,1.0"])
    # the first 20 lines all point at May: the file is read whole before it is left for later
    write_lines(root, "deep.csv", [f"DEV1,2026-05-02 10:{15 * (i % 4):02d},kwh_del,1.0" for i in range(30)])
    with open(root / "readings" / "deep.csv", "a") as fh:
        fh.write("DEV1,2026-04-30 10:15,kwh_del,1.0\n")
    write_lines(root, "may.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0"])
    plan = ledger.plan(root, Month.parse("2026-04"), pl.DataFrame(schema=ledger.SCHEMA), now=NOW)
    assert sorted(plan.labels) == ["readings/deep.csv", "readings/far.csv", "readings/old.csv"]
    assert plan.deferred == ["readings/may.csv"]
    assert set(plan.hints) == {Month.parse("2026-04")}


def test_earliest_months_of_many_files_read_together_equal_each_files_own(tmp_path, monkeypatch):
    """`first_months` scans contract-header files in batches; a batch holding a ragged line is read again
    file by file. Each file's month is its earliest valid row's, wherever the row is."""
    monkeypatch.setattr(readings, "_FIRST_MONTHS_BATCH", 4)
    root = tmp_path / "in"
    expected: dict[str, str | None] = {}
    for i in range(11):
        month = 5 + i % 6
        rows = [f"DEV{i},2026-{month + 1:02d}-02 10:15,kwh_del,1.0"] * 25  # the first lines point later
        rows += [f"DEV{i},2026-{month:02d}-{1 + i:02d} 10:15,kwh_del,1.0", f"DEV{i},2062-01-01 00:15,kwh_del,1.0"]
        write_lines(root, f"f{i:02d}.csv", rows)
        expected[f"f{i:02d}.csv"] = f"2026-{month:02d}"
    write_lines(root, "ragged.csv", ["DEV1,2026-07-03 10:15,kwh_del,1.0,extra", "DEV1,2026-06-03 10:15,kwh_del,1.0"])
    expected["ragged.csv"] = "2026-06"
    write_lines(root, "padded.csv", ["DEV1, 2026-09-03 10:15 ,kwh_del,1.0"])
    expected["padded.csv"] = "2026-09"
    write_lines(root, "none.csv", ["DEV1,0001-01-01 00:15,kwh_del,1.0", "DEV1,2062-04-10 10:00,kwh_del,1.0"])
    expected["none.csv"] = None
    files = sorted((root / "readings").glob("*.csv"))
    found = readings.first_months(files, list(range(len(files))), datetime(2020, 1, 1), NOW)
    assert {files[i].name: str(m) if m else None for i, m in found.items()} == expected


def test_rows_out_of_range_are_quarantined_without_a_month_of_their_own(tmp_path):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(
        root,
        "PA.csv",
        ["DEV1,0001-01-01 00:15,kwh_del,1.0", "DEV1,2026-04-02 10:15,kwh_del,1.0", "DEV1,2062-04-10 10:00,kwh_del,1"],
    )
    staged = stage(root, tmp_path / "out")
    rows = staged.scan().sort("row").collect()
    assert rows["cat"].to_list() == [readings.CATEGORY["unplaced"], readings.CATEGORY["good"]] + [
        readings.CATEGORY["unplaced"]
    ]
    assert rows["rel"].to_list() == [None, 0, None]
    why = rows.select(readings.reasons()).to_series().to_list()
    assert "before the earliest" in why[0] and "future" in why[2]


def test_echoed_text_is_an_excerpt(tmp_path):
    assert landing.excerpt("x" * 10) == "x" * 10
    cut = landing.excerpt("y" * 150_000)
    assert len(cut) < 250 and cut.endswith("(150,000 characters)")
    path = write_lines(tmp_path, "wide.csv", [])
    path.write_text("h" * 150_000 + "\nDEV1,2026-04-02 10:15,kwh_del,1.0\n")
    _, _, problem = landing.header(path)
    assert "header lacks" in problem and len(problem) < 400


def test_the_floor_comes_from_the_config(tmp_path):
    assert landing.earliest_interval_end() == datetime(2000, 1, 1)
    conf = tmp_path / "vee.toml"
    conf.write_text("[readings]\nearliest_interval_end = 2010-06-01\n")
    assert landing.earliest_interval_end(conf) == datetime(2010, 6, 1)


NOTHING_READ = pl.DataFrame(
    schema={
        "file": pl.Int64,
        "month": pl.String,
        "rows": pl.Int64,
        "good": pl.Int64,
        "first_interval": pl.Datetime("us"),
        "last_interval": pl.Datetime("us"),
    }
)


def _swap_keeping_size_and_time(path, text: str) -> None:
    """New content of the same size and modification time: only a run that opens the file sees it."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_deferred_file_is_recorded_and_not_opened_again_until_its_month(tmp_path):
    root = tmp_path / "in"
    write_lines(root, "apr.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"])
    may = write_lines(root, "may.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0"])
    first = ledger.plan(root, Month.parse("2026-04"), pl.DataFrame(schema=ledger.SCHEMA), now=NOW)
    assert first.deferred == ["readings/may.csv"] and first.not_opened == 0
    rows = ledger.rows(first, NOTHING_READ, {}, ledger.hashes(first), "run-1", NOW)
    recorded = rows.filter(pl.col("status") == "deferred")
    assert recorded.select("path", "month", "size_bytes").rows() == [
        ("readings/may.csv", "2026-05", may.stat().st_size)
    ]
    assert recorded["sha256"].to_list() == [ledger.sha256(may)]

    # April's rows now, same size and time: a run that opened the file would read it for April
    _swap_keeping_size_and_time(may, may.read_text().replace("2026-05-02", "2026-04-02"))
    again = ledger.plan(root, Month.parse("2026-04"), recorded, now=NOW)
    assert again.deferred == ["readings/may.csv"] and again.not_opened == 1
    assert again.labels == ["readings/apr.csv"] and again.waiting == []  # nothing to record again

    # the run of May reads it, starting at the month the ledger recorded
    in_may = ledger.plan(root, Month.parse("2026-05"), recorded, now=NOW)
    assert "readings/may.csv" in in_may.labels and in_may.not_opened == 0 and in_may.deferred == []
    # its sha256 is the one recorded when it was deferred: not hashed again
    assert in_may.known_hashes == {in_may.labels.index("readings/may.csv"): recorded["sha256"][0]}
    assert ledger.undeferred(in_may, in_may.labels)["path"].to_list() == ["readings/apr.csv", "readings/may.csv"]


def test_a_changed_deferred_file_is_looked_at_again(tmp_path):
    root = tmp_path / "in"
    may = write_lines(root, "may.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0"])
    first = ledger.plan(root, Month.parse("2026-04"), pl.DataFrame(schema=ledger.SCHEMA), now=NOW)
    recorded = ledger.rows(first, NOTHING_READ, {}, ledger.hashes(first), "run-1", NOW)
    may.write_text(may.read_text() + "DEV1,2026-04-30 10:15,kwh_del,1.0\n")  # a resend with an April row
    changed = ledger.plan(root, Month.parse("2026-04"), recorded, now=NOW)
    assert changed.labels == ["readings/may.csv"] and changed.deferred == [] and changed.not_opened == 0
    # touched only (same content, new time): its month is known from the sha256, it is recorded again
    may.write_text("device_id,interval_end,channel,value\nDEV1,2026-05-02 10:15,kwh_del,1.0\n")
    os.utime(may, ns=(10**18, 10**18))
    touched = ledger.plan(root, Month.parse("2026-04"), recorded, now=NOW)
    assert touched.deferred == ["readings/may.csv"] and touched.not_opened == 1
    assert [(w.label, w.month) for w in touched.waiting] == [("readings/may.csv", Month.parse("2026-05"))]


def test_the_month_of_a_row_is_the_month_its_interval_starts_in_counted_from_the_runs():
    """`_month_offset` (a table of days) against hand-counted months, and against the calendar on every
    interval_end of the accepted range's edges; the interval ending at 00:00 on the 1st is the month before's."""
    start = datetime(2026, 4, 1)
    accepted = readings.Accepted(now=datetime(2026, 12, 6, 12, 0), floor=datetime(2020, 1, 1))
    cases = {
        datetime(2026, 4, 1, 0, 0): -1,
        datetime(2026, 4, 1, 0, 15): 0,
        datetime(2026, 4, 30, 23, 45): 0,
        datetime(2026, 5, 1, 0, 0): 0,
        datetime(2026, 5, 1, 0, 15): 1,
        datetime(2025, 4, 1, 0, 15): -12,
        datetime(2020, 1, 1, 0, 0): -76,  # the floor: December 2019's last interval
        datetime(2026, 12, 6, 12, 0): 8,  # the time of the run
        datetime(2026, 4, 2, 10, 10): 0,  # off the grid: still a month (the row is quarantined for the grid)
    }
    frame = pl.DataFrame({"ts": list(cases)}, schema={"ts": pl.Datetime("us")})
    assert frame.select(readings._month_offset(start, accepted).alias("rel"))["rel"].to_list() == list(cases.values())
    edges = pl.concat(
        [
            pl.datetime_range(datetime(2020, 1, 1), datetime(2020, 3, 2), "15m", eager=True),
            pl.datetime_range(datetime(2026, 2, 27), datetime(2026, 12, 6, 12, 0), "15m", eager=True),
        ]
    ).to_frame("ts")
    shifted = pl.col("ts") - pl.duration(minutes=15)
    calendar = shifted.dt.year().cast(pl.Int32) * 12 + shifted.dt.month().cast(pl.Int32) - (2026 * 12 + 4)
    both = edges.select(table=readings._month_offset(start, accepted), calendar=calendar.cast(pl.Int16))
    assert both["table"].equals(both["calendar"])


def test_a_backfill_leaves_a_file_of_its_later_months_unread_and_hands_it_on(tmp_path):
    """In a backfill that goes on to June (`ledger.Ahead`), a file whose first lines are of May is left for
    May's run without being read through (so its April row waits for May's run) and is not recorded; one
    of August, after the backfill, is read through and recorded as deferred, as outside a backfill. Handed
    on, the left file is not opened again before its month; the run of its month reads it and marks it as
    left by an earlier run (job.py then computes again the months since the earliest it holds)."""
    root = tmp_path / "in"
    empty = pl.DataFrame(schema=ledger.SCHEMA)
    write_lines(root, "apr.csv", ["DEV1,2026-04-02 10:15,kwh_del,1.0"])
    may = write_lines(root, "may.csv", ["DEV1,2026-05-02 10:15,kwh_del,1.0", "DEV1,2026-04-30 10:15,kwh_del,1.0"])
    write_lines(root, "aug.csv", ["DEV1,2026-08-02 10:15,kwh_del,1.0"])
    april, may_month = Month.parse("2026-04"), Month.parse("2026-05")
    ahead = ledger.Ahead(Month.parse("2026-06"))
    first = ledger.plan(root, april, empty, now=NOW, ahead=ahead)
    assert first.labels == ["readings/apr.csv"]
    assert sorted(first.deferred) == ["readings/aug.csv", "readings/may.csv"]
    assert first.ahead == {"readings/may.csv": (may.stat().st_size, may.stat().st_mtime_ns, may_month)}
    assert [(w.label, w.month) for w in first.waiting] == [("readings/aug.csv", Month.parse("2026-08"))]
    assert first.left_before == set()
    # outside a backfill the same plan reads may.csv through and finds its April row
    assert ledger.plan(root, april, empty, now=NOW).labels == ["readings/apr.csv", "readings/may.csv"]

    # April's rows first now, same size and time: a run that opened the file would read it for April
    _swap_keeping_size_and_time(may, may.read_text().replace("2026-05-02", "2026-04-02"))
    handed = ledger.Ahead(ahead.until, first.ahead)
    again = ledger.plan(root, april, empty, now=NOW, ahead=handed)
    assert again.labels == ["readings/apr.csv"] and again.ahead == first.ahead
    in_may = ledger.plan(root, may_month, empty, now=NOW, ahead=handed)
    assert in_may.left_before == {in_may.labels.index("readings/may.csv")} and in_may.ahead == {}
    # changed since it was left (another size): its first lines are read again, and it is still one the
    # backfill left unread
    may.write_text(may.read_text() + "DEV1,2026-05-03 10:15,kwh_del,1.0\n")
    changed = ledger.plan(root, april, empty, now=NOW, ahead=handed)
    assert changed.labels == ["readings/apr.csv", "readings/may.csv"]
    assert changed.left_before == {changed.labels.index("readings/may.csv")}
