"""Metering's integer keys: how a reading's point, channel and interval are packed into one Int64.

A month's readings are sorted and joined on one integer instead of (point_id, channel, interval_end):

    series = point_idx * N_CHANNELS + channel index          (channel index: position in CHANNELS)
    k      = series * KEY_SPAN + i                           (i = interval of the month, 1..2976)
    h      = series * HOUR_KEY_SPAN + hour of the month      (the hourly key of meter_hourly, 0..743)

Interval i of a month ends at the month's start + 15 min * i (an interval is labelled by its END), so
day d (0-based) holds i = 96d + 1 .. 96d + 96 and interval i belongs to hour (i - 1) // 4.

Every helper works on polars expressions, polars Series, numpy arrays and plain ints alike (they only
use `*`, `+`, `//` and `%`); the ones that name a column default to the key column `k`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from pipelines.periods import INTERVAL

CHANNELS = ("kwh_del", "kwh_rec", "kvarh_del", "kvarh_rec")  # the channel index is the position here
N_CHANNELS = len(CHANNELS)
INTERVAL_MINUTES = INTERVAL // timedelta(minutes=1)  # 15: the one interval, periods.INTERVAL
INTERVALS_PER_HOUR = 60 // INTERVAL_MINUTES  # 4
INTERVALS_PER_DAY = 24 * INTERVALS_PER_HOUR  # 96
INTERVAL_US = INTERVAL_MINUTES * 60 * 1_000_000
DAY_US = INTERVALS_PER_DAY * INTERVAL_US
KEY_SPAN = 8192  # > 31 days * 96 intervals (2976): room for every interval of a month in one series
KEY_BITS = KEY_SPAN.bit_length() - 1  # KEY_SPAN is a power of two: numpy splits keys by shift and mask
HOUR_KEY_SPAN = 1024  # > 31 days * 24 hours (744): room for every hour of a month in one series

K = pl.col("k")


def series_of(point_idx, channel_index):
    """The series of a (point index, channel index) pair."""
    return point_idx * N_CHANNELS + channel_index


def encode(series, i):
    """The key of interval `i` of `series`."""
    return series * KEY_SPAN + i


def series(k=K):
    """The series of a key."""
    return k // KEY_SPAN


def interval_index(k=K):
    """The interval of the month (1..2976) of a key."""
    return k % KEY_SPAN


def split(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(series, i) of a numpy array of keys, by shift and mask: numpy's integer // and % cost ten times
    more, seconds on a month's 24 million keys."""
    return k >> KEY_BITS, k & (KEY_SPAN - 1)


def point_index(series_):
    """The point index of a series (not of a key: use point_index(series(k)))."""
    return series_ // N_CHANNELS


def channel_index(series_):
    """The channel index (position in CHANNELS) of a series."""
    return series_ % N_CHANNELS


def day_index(i):
    """The 0-based day of the month of interval `i` (the day the interval starts in)."""
    return (i - 1) // INTERVALS_PER_DAY


def interval_of_day(i):
    """The 0-based interval of its day (0..95) of interval `i`."""
    return (i - 1) % INTERVALS_PER_DAY


def hour_key(k=K):
    """The hourly key h = series * HOUR_KEY_SPAN + hour of the month of an interval key."""
    return series(k) * HOUR_KEY_SPAN + (interval_index(k) - 1) // INTERVALS_PER_HOUR


def hour_series(h=pl.col("h")):
    return h // HOUR_KEY_SPAN


def hour_of_month(h=pl.col("h")):
    return h % HOUR_KEY_SPAN


def interval_end(start: datetime, i: pl.Expr) -> pl.Expr:
    """The end of interval `i` (an expression) of the month starting at `start`."""
    return pl.lit(start) + pl.duration(minutes=INTERVAL_MINUTES * i)


def interval_of(start: datetime, ts: pl.Expr) -> pl.Expr:
    """The interval index of a timestamp expression (the interval ending at `ts`) in the month of `start`."""
    return (ts - pl.lit(start)).dt.total_minutes() // INTERVAL_MINUTES


def channel_name(channel_index_: pl.Expr) -> pl.Expr:
    """The channel's name (String) of a channel index expression."""
    return pl.lit(pl.Series(list(CHANNELS))).gather(channel_index_)


def channel_table() -> pl.DataFrame:
    """(channel, ch): each channel's name and index, to join on."""
    return pl.DataFrame(
        {"channel": list(CHANNELS), "ch": list(range(N_CHANNELS))}, schema={"channel": pl.String, "ch": pl.Int64}
    )


def decode(k=K) -> dict[str, pl.Expr]:
    """series, point_idx, ch and i of a key, as named expressions for `select`/`with_columns`."""
    s = series(k)
    return {"series": s, "point_idx": point_index(s), "ch": channel_index(s), "i": interval_index(k)}


def sql_key(point_idx: str, channel_index_: str, i: str) -> str:
    """The same key in DuckDB SQL, from SQL expressions for the point index, channel index and interval."""
    return f"({point_idx} * {N_CHANNELS} + {channel_index_}) * {KEY_SPAN} + {i}"


def sql_interval(start_param: str, ts: str) -> str:
    """The interval index in DuckDB SQL of the interval ending at `ts` in the month starting at `start_param`."""
    return f"date_diff('minute', {start_param}, {ts}) // {INTERVAL_MINUTES}"


def complete(k: np.ndarray, first_series: int, n_series: int, n_i: int) -> bool:
    """Whether `k` is exactly the keys of intervals 1..n_i of series first_series .. + n_series - 1, in
    order (a complete month: the common case). Compared a block of series at a time, against keys built
    without a division."""
    if k.size != n_series * n_i or k.size == 0:
        return False
    intervals = np.arange(1, n_i + 1, dtype=np.int64)
    block = 256
    for lo in range(0, n_series, block):
        hi = min(lo + block, n_series)
        expected = encode(np.arange(first_series + lo, first_series + hi, dtype=np.int64)[:, None], intervals)
        if not np.array_equal(k[lo * n_i : hi * n_i], expected.ravel()):
            return False
    return True
