"""Estimation (linear, like_day) on April 2026 by hand: 2, 3 and 4 April (Maundy Thursday, Good Friday,
Holy Saturday) are Guatemalan public holidays. Series 0 has a value per day that names the day, plus
q / 1000 for the interval-of-day q, so every like-day mean says which days it used:
value(day, q) = (day - 1 March 2026 in days) + q / 1000 (e.g. 31 March = 30, 1 April = 31)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from pipelines.metering import estimation, keys, vee
from pipelines.metering.keys import INTERVAL_US
from pipelines.metering.month import Validated

START = datetime(2026, 4, 1)
END = datetime(2026, 5, 1)
N = 30 * 96
T = vee.Thresholds()
KINDS = estimation.month_day_kinds(START, END, T)
RANGES = pl.DataFrame({"point_idx": [0], "first_i": [1], "last_i": [N]})


def value(i: int) -> float:
    """Reading of interval i (relative to 1 April; i <= 0 is March): the day number plus q / 1000."""
    d, q = divmod(i - 1, 96)
    return 31 + d + q / 1000


def day_value(day: date, q: int) -> float:
    return (day - date(2026, 3, 1)).days + q / 1000


def month(missing: set[int]) -> pl.DataFrame:
    keys = [i for i in range(1, N + 1) if i not in missing]
    return pl.DataFrame({"k": keys, "v": [value(i) for i in keys]}, schema={"k": pl.Int64, "v": pl.Float64})


def march(flagged: set[int] = frozenset()) -> pl.DataFrame:
    """Real readings from 1 March 00:15 to 1 April 00:00 (i = -2975 .. 0) in the history shape."""
    rows = [(0, START + timedelta(microseconds=INTERVAL_US * i), value(i), i in flagged) for i in range(-2975, 1)]
    return pl.DataFrame(rows, schema=vee.HISTORY_SCHEMA, orient="row")


def run(
    missing: set[int],
    *,
    flagged_month: set[int] = frozenset(),
    flagged_march: set[int] = frozenset(),
    t: vee.Thresholds = T,
) -> tuple[pl.DataFrame, dict[int, tuple[float, str]]]:
    readings = month(missing)
    findings = pl.DataFrame({"k": sorted(flagged_month)}, schema={"k": pl.Int64})
    history = pl.concat([march(flagged_march), vee.history_from_month(readings, findings, START)])
    gaps, estimates = estimation.estimate(
        readings, RANGES, t, month_start=START, history=history, kinds=KINDS, flagged=findings
    )
    assert not set(estimates["k"]) & set(readings["k"])  # never over a real reading
    own = gaps.filter(keys.series() == 0)
    return own, {k: (v, m) for k, v, m in estimates.filter(keys.series() == 0).iter_rows()}


def day_intervals(day: date) -> set[int]:
    d = (day - START.date()).days
    return set(range(96 * d + 1, 96 * d + 97))


def test_day_kinds_holy_week_and_weekends():
    kinds = dict(KINDS.filter(pl.col("date").is_between(date(2026, 3, 28), date(2026, 4, 6))).iter_rows())
    assert kinds == {
        date(2026, 3, 28): "saturday",
        date(2026, 3, 29): "sunday_or_holiday",
        date(2026, 3, 30): "business",
        date(2026, 3, 31): "business",
        date(2026, 4, 1): "business",
        date(2026, 4, 2): "sunday_or_holiday",
        date(2026, 4, 3): "sunday_or_holiday",  # Maundy Thursday, Good Friday
        date(2026, 4, 4): "sunday_or_holiday",  # Holy Saturday is a holiday, not an ordinary Saturday
        date(2026, 4, 5): "sunday_or_holiday",
        date(2026, 4, 6): "business",
    }
    assert KINDS["date"].min() == date(2026, 3, 4) and KINDS["date"].max() == date(2026, 4, 30)


def test_like_day_across_holy_week_and_a_weekend():
    monday, sunday, saturday = date(2026, 4, 6), date(2026, 4, 5), date(2026, 4, 11)
    missing = day_intervals(monday) | day_intervals(sunday) | day_intervals(saturday)
    gaps, est = run(missing)
    q = 7  # any interval of the day
    # Monday 6 April: the business days before it skip the weekend and Holy Thursday/Friday: 1 Apr, 31 and 30 Mar
    i = min(day_intervals(monday)) + q
    assert est[i] == (
        pytest.approx(
            (day_value(date(2026, 4, 1), q) + day_value(date(2026, 3, 31), q) + day_value(date(2026, 3, 30), q)) / 3
        ),
        "like_day",
    )
    # Easter Sunday 5 April: Holy Saturday, Good Friday, Maundy Thursday (all holidays), not 29 March
    i = min(day_intervals(sunday)) + q
    assert est[i][0] == pytest.approx(
        (day_value(date(2026, 4, 4), q) + day_value(date(2026, 4, 3), q) + day_value(date(2026, 4, 2), q)) / 3
    )
    # Saturday 11 April: Holy Saturday was a holiday, so 28, 21 and 14 March
    i = min(day_intervals(saturday)) + q
    assert est[i][0] == pytest.approx(
        (day_value(date(2026, 3, 28), q) + day_value(date(2026, 3, 21), q) + day_value(date(2026, 3, 14), q)) / 3
    )
    # Sunday and Monday are one gap of 192 intervals, Saturday another: all estimated, each said so
    assert len(est) == 3 * 96
    assert gaps.select(i=keys.interval_index(), d=pl.col("detail")).rows() == [
        (
            min(day_intervals(sunday)),
            "192 interval(s) missing; estimated by like_day (mean of the same interval on 3 like days)",
        ),
        (
            min(day_intervals(saturday)),
            "96 interval(s) missing; estimated by like_day (mean of the same interval on 3 like days)",
        ),
    ]


def test_like_day_never_uses_a_flagged_reading():
    monday = date(2026, 4, 6)
    q = 20
    # 1 April's reading at q carries a finding (in the month), and so does 30 March's (in the history):
    # the next like days back are 31, 27 and 26 March
    flagged_month = {min(day_intervals(date(2026, 4, 1))) + q}
    flagged_march = {-2 * 96 + q + 1}  # 30 March, q
    gaps, est = run(day_intervals(monday), flagged_month=flagged_month, flagged_march=flagged_march)
    i = min(day_intervals(monday)) + q
    assert est[i][0] == pytest.approx(
        (day_value(date(2026, 3, 31), q) + day_value(date(2026, 3, 27), q) + day_value(date(2026, 3, 26), q)) / 3
    )
    # another interval of the same day still uses 1 April, 31 and 30 March
    assert est[i + 1][0] == pytest.approx(
        (day_value(date(2026, 4, 1), q + 1) + day_value(date(2026, 3, 31), q + 1) + day_value(date(2026, 3, 30), q + 1))
        / 3
    )


def test_too_few_like_days_stays_missing_and_is_reported():
    # Saturday 11 April: the Saturdays within 28 days are 14, 21 and 28 March (4 April is a holiday).
    # 28 March 00:00-12:00 carries findings, so before noon only 2 like days remain: left missing.
    saturday = date(2026, 4, 11)
    flagged_march = {-4 * 96 + 1 + q for q in range(48)}  # 28 March, q 0..47
    gaps, est = run(day_intervals(saturday), flagged_march=flagged_march)
    noon = min(day_intervals(saturday)) + 48
    assert sorted(est) == list(range(noon, noon + 48))
    assert est[noon][0] == pytest.approx(
        (day_value(date(2026, 3, 28), 48) + day_value(date(2026, 3, 21), 48) + day_value(date(2026, 3, 14), 48)) / 3
    )
    assert gaps["detail"].to_list() == [
        "96 interval(s) missing; 48 estimated by like_day, 48 left missing (fewer than 3 like days with a real "
        "reading without findings in the previous 28 days)"
    ]
    # the whole of 28 March flagged: nothing estimated, and the finding says why
    gaps, est = run(day_intervals(saturday), flagged_march={-4 * 96 + 1 + q for q in range(96)})
    assert est == {}
    assert gaps["detail"].to_list() == [
        "96 interval(s) missing (not estimated: fewer than 3 like days with a real reading without findings in "
        "the previous 28 days)"
    ]


def test_like_day_maximum_at_the_limit_and_one_step_either_side():
    t = vee.Thresholds(like_day_max_intervals=192)
    first = min(day_intervals(date(2026, 4, 14)))
    for length, estimated in ((191, True), (192, True), (193, False)):
        gaps, est = run(set(range(first, first + length)), t=t)
        assert len(est) == (length if estimated else 0)
        detail = gaps["detail"].item()
        if not estimated:
            assert detail == (
                "193 interval(s) missing (not estimated: longer than the like_day maximum of 192 intervals)"
            )


def test_linear_at_the_limit_and_one_step_either_side():
    first = 1000
    for length, method in ((7, "linear"), (8, "linear"), (9, "like_day")):
        gaps, est = run(set(range(first, first + length)))
        assert {m for _, m in est.values()} == {method} and len(est) == length
    # 8 intervals between the readings at 999 and 1008: straight line
    gaps, est = run(set(range(1000, 1008)))
    step = (value(1008) - value(999)) / 9
    assert est[1000][0] == pytest.approx(value(999) + step) and est[1007][0] == pytest.approx(value(999) + 8 * step)
    assert gaps["detail"].item() == "8 interval(s) missing; estimated by linear interpolation"


def test_a_flagged_neighbour_is_no_basis_for_linear():
    gaps, est = run({1000, 1001}, flagged_month={1002})  # the reading after the gap has a finding
    assert {m for _, m in est.values()} == {"like_day"}
    gaps, est = run({1000, 1001}, flagged_month={999})
    assert {m for _, m in est.values()} == {"like_day"}


def test_without_history_longer_gaps_stay_missing():
    readings = month(set(range(1000, 1020)))
    gaps, est = estimation.estimate(readings, RANGES, T, month_start=START)
    assert est.height == 0
    assert gaps.filter(keys.series() == 0)["detail"].item() == (
        "20 interval(s) missing (not estimated: no history for like_day)"
    )
    # the other three channels have no reading at all: longer than 7 days, never estimated
    other = gaps.filter(keys.series() == 1)["detail"].item()
    assert other == "2880 interval(s) missing (not estimated: longer than the like_day maximum of 672 intervals)"


@pytest.mark.parametrize(
    "gap_days",
    [[29], [12, 29], [0, 17], [17]],
    ids=["last day", "mid and last", "first and mid", "a Saturday whose third like day is 28 days back"],
)
def test_like_day_from_the_window_before_the_first_gapped_day_is_like_day_from_all_history(gap_days):
    """The metering job builds like_day's history from `like_day_window_days` before the first gapped
    day on (month._derive, Validated.history's `since`): the same gap findings and estimates as from the
    whole history, whether that window reaches into the weeks before the month or not."""
    rng = np.random.default_rng(11)
    n_points, weeks = 2, 4 * 672
    series = np.arange(n_points * keys.N_CHANNELS)
    k = keys.encode(np.repeat(series, N), np.tile(np.arange(1, N + 1), series.size))
    gone = np.zeros(k.size, dtype=bool)
    for s, day in zip(series, gap_days * series.size):
        start = s * N + day * 96 + int(rng.integers(0, 40))
        gone[start : start + int(rng.integers(3, 200))] = True
    readings = pl.DataFrame({"k": k[~gone], "v": rng.gamma(2.0, 5.0, int((~gone).sum()))})
    before = pl.DataFrame(
        {
            "series": np.repeat(series, weeks),
            "j": np.tile(np.arange(-weeks + 1, 1), series.size),
            "v": rng.gamma(2.0, 5.0, series.size * weeks),
        },
        schema=vee.BEFORE_SCHEMA,
    )
    flagged = readings.sample(300, seed=2).select("k")
    checked = Validated(findings=pl.DataFrame(), conflicts=pl.DataFrame(), before=before, flagged=flagged)
    ranges = pl.DataFrame({"point_idx": list(range(n_points)), "first_i": [1] * n_points, "last_i": [N] * n_points})
    gaps = vee.gap_runs(readings, ranges)
    since = keys.day_index(gaps["from_i"].min()) - T.like_day_window_days
    found = {}
    for name, window in (("all", None), ("window", since)):
        history = checked.history(readings, START, gaps["series"].unique(), window)
        found[name] = estimation.estimate(
            readings, ranges, T, month_start=START, history=history, kinds=KINDS, flagged=flagged
        )
    assert found["window"][0].equals(found["all"][0]) and found["window"][1].equals(found["all"][1])
    assert found["all"][1].filter(pl.col("method") == "like_day").height > 100
