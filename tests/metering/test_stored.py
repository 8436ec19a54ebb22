"""stored.history_before: the weeks before a month as the history rules read them, by hand."""

from datetime import datetime

import duckdb
import numpy as np
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


def test_rows_are_put_in_key_order_by_their_cells_unless_a_key_repeats():
    """stored._in_key_order: the rows of a month in key order without a sort (each row placed at its
    key's cell of the series x interval grid), gaps and all; None when a key appears twice, when the
    grid is far larger than the rows, or for keys that are not a month's (interval 0)."""
    rng = np.random.default_rng(3)
    series, n_i = 37, 2976
    k = keys.encode(np.repeat(np.arange(5, 5 + series), n_i), np.tile(np.arange(1, n_i + 1), series))
    k = rng.permutation(k[rng.random(k.size) > 0.1])  # gaps, landing order
    new = pl.DataFrame({"k": k, "v": rng.random(k.size), "file": rng.integers(0, 50, k.size).astype(np.uint32)})
    assert stored._in_key_order(new).equals(new.sort("k"))
    assert stored._in_key_order(pl.concat([new, new.head(1)])) is None
    sparse = pl.DataFrame({"k": [keys.encode(0, 1), keys.encode(100_000, 2976)], "v": [1.0, 2.0], "file": [0, 1]})
    assert stored._in_key_order(sparse) is None
    assert stored._in_key_order(pl.DataFrame({"k": [keys.encode(1, 0)], "v": [1.0], "file": [0]})) is None


def test_merge_keeps_the_later_landing_of_a_key_read_twice_and_sorts_the_rest():
    k1, k2, k3 = (keys.encode(0, i) for i in (1, 2, 3))
    new = pl.DataFrame(
        {"k": [k3, k1, k2, k1], "v": [3.0, 1.0, 2.0, 1.5], "file": [0, 0, 0, 1], "row": [1, 2, 3, 1]},
        schema={"k": pl.Int64, "v": pl.Float64, "file": pl.UInt32, "row": pl.UInt32},
    )
    merged = stored.merge(new, pl.DataFrame(schema={"k": pl.Int64, "v": pl.Float64}))
    assert merged.current.rows() == [(k1, 1.5), (k2, 2.0), (k3, 3.0)]
    assert merged.lost.rows() == [(k1, 1.0, 0, 1)] and merged.duplicates == 0
    alone = stored.merge(new.filter(pl.col("file") == 0), pl.DataFrame({"k": [k2], "v": [9.0]}))
    assert alone.current.rows() == [(k1, 1.0), (k2, 2.0), (k3, 3.0)]
    assert alone.replaced.rows() == [(k2, 9.0, 0)]
