"""stored.history_before: the weeks before a month as the history rules read them, by hand."""

from datetime import datetime

import duckdb
import polars as pl
import pytest

from pipelines.metering import keys, stored, vee
from pipelines.periods import Month
from pipelines.warehouse import Reader

MAY = Month.parse("2026-05")
POINTS = pl.DataFrame({"point_id": ["PT-A", "PT-B"], "point_idx": [0, 1]})
CH = dict(zip(keys.CHANNELS, range(keys.N_CHANNELS)))


@pytest.fixture
def warehouse():
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS wh")
    con.execute(
        "CREATE TABLE wh.meter_readings (point_id VARCHAR, channel VARCHAR, interval_end TIMESTAMP, "
        "value DOUBLE, month VARCHAR)"
    )
    rows = [
        ("PT-A", "kwh_del", datetime(2026, 4, 30, 23, 45), 1.0, "2026-04"),  # j = -1
        ("PT-A", "kwh_del", datetime(2026, 5, 1, 0, 0), 2.0, "2026-04"),  # April's last interval: j = 0
        ("PT-B", "kwh_rec", datetime(2026, 4, 10, 12, 0), 3.0, "2026-04"),  # 20.5 days before: j = -1968
        ("PT-B", "kwh_rec", datetime(2026, 4, 2, 0, 0), 4.0, "2026-04"),  # more than 28 days before
        ("PT-A", "kwh_del", datetime(2026, 4, 20, 10, 7), 5.0, "2026-04"),  # off the 15-minute grid
        ("PT-A", "kwh_del", datetime(2026, 4, 20, 10, 15), float("nan"), "2026-04"),  # not finite
        ("PT-A", "kvarh_del", datetime(2026, 4, 20, 10, 30), 6.0, "2026-04"),  # has a finding
        ("PT-C", "kwh_del", datetime(2026, 4, 20, 10, 30), 7.0, "2026-04"),  # not a point of May
        ("PT-A", "kwh_del", datetime(2026, 3, 31, 12, 0), 8.0, "2026-03"),  # two months before
    ]
    con.executemany("INSERT INTO wh.meter_readings VALUES (?, ?, ?, ?, ?)", rows)
    con.execute(
        "CREATE TABLE wh.vee_findings AS SELECT 'PT-A' AS point_id, 'kvarh_del' AS channel, "
        "TIMESTAMP '2026-04-20 10:30' AS interval_end, '2026-04' AS month, 'spike' AS rule"
    )
    yield con
    con.close()


def test_history_before_keeps_the_usable_readings_of_the_weeks_before(warehouse):
    got = stored.history_before(Reader.over(warehouse), MAY, POINTS, 28)
    assert got.schema == pl.Schema(vee.BEFORE_SCHEMA)
    a, b = 0 * keys.N_CHANNELS + CH["kwh_del"], 1 * keys.N_CHANNELS + CH["kwh_rec"]
    assert sorted(got.rows()) == sorted([(a, -1, 1.0), (a, 0, 2.0), (b, -1968, 3.0)])
    # the same rows through the history shape and back (what estimation and vs_history see)
    again = vee.usable_history(vee.before_as_history(got, MAY.start), MAY.start)
    assert again.sort("series", "j").equals(got.sort("series", "j"))


def test_without_findings_table_a_flagged_reading_counts(warehouse):
    warehouse.execute("DROP TABLE wh.vee_findings")
    got = stored.history_before(Reader.over(warehouse), MAY, POINTS, 28)
    assert (0 * keys.N_CHANNELS + CH["kvarh_del"], -1014, 6.0) in got.rows()  # 10 days 13.5 h before
    assert got.height == 4


def test_no_history_read_when_no_days_are_asked(warehouse):
    assert stored.history_before(Reader.over(warehouse), MAY, POINTS, 0).is_empty()
