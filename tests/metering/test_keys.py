"""pipelines/metering/keys.py: the key packs (point, channel, interval) and every helper unpacks it."""

from datetime import datetime

import polars as pl

from pipelines.metering import keys


def test_encode_and_decode_round_trip():
    s = keys.series_of(7, keys.CHANNELS.index("kvarh_del"))
    k = keys.encode(s, 2976)  # the last interval of a 31-day month
    assert (keys.series(k), keys.point_index(keys.series(k)), keys.channel_index(keys.series(k))) == (s, 7, 2)
    assert keys.interval_index(k) == 2976
    frame = pl.DataFrame({"k": [k]}).select(**keys.decode())
    assert frame.rows(named=True) == [{"series": s, "point_idx": 7, "ch": 2, "i": 2976}]


def test_interval_end_day_and_hour():
    start = datetime(2026, 3, 1)
    frame = pl.DataFrame({"k": [keys.encode(1, 1), keys.encode(1, 96), keys.encode(1, 97)]}).select(
        end=keys.interval_end(start, keys.interval_index()),
        day=keys.day_index(keys.interval_index()),
        q=keys.interval_of_day(keys.interval_index()),
        h=keys.hour_key(),
    )
    assert frame.rows() == [
        (datetime(2026, 3, 1, 0, 15), 0, 0, 1 * keys.HOUR_KEY_SPAN + 0),
        (datetime(2026, 3, 2, 0, 0), 0, 95, 1 * keys.HOUR_KEY_SPAN + 23),
        (datetime(2026, 3, 2, 0, 15), 1, 0, 1 * keys.HOUR_KEY_SPAN + 24),
    ]
    back = frame.select(i=keys.interval_of(start, pl.col("end")))["i"].to_list()
    assert back == [1, 96, 97]


def test_spans_hold_a_month():
    assert 31 * keys.INTERVALS_PER_DAY < keys.KEY_SPAN and 31 * 24 < keys.HOUR_KEY_SPAN
    assert keys.channel_name(pl.lit(3)).alias("c").meta.output_name() == "c"
