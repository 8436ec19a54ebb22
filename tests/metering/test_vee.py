"""VEE rules, interpolation, deduplication and hourly quality on tiny keyed series, values by hand.

Keys: k = series * 8192 + i (series = point_idx * 4 + channel, i = interval of the month)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from pipelines.metering import aggregates, keys, vee

T = vee.Thresholds(
    kwh_max=100.0,
    kvarh_max=50.0,
    point_max={"P2": 20.0},
    spike_factor=5.0,
    spike_min_delta=10.0,
    stuck_min_intervals=4,
    max_gap_intervals=3,
)
MAX = vee.series_max(["P1", "P2"], T)  # series 0-3: P1, 4-7: P2


def frame(series: int, values: dict[int, float]) -> pl.DataFrame:
    return pl.DataFrame({"k": [keys.encode(series, i) for i in values], "v": list(values.values())}).sort("k")


def rules(findings: pl.DataFrame) -> set[tuple[int, str]]:
    return {(keys.interval_index(k), r) for k, r in findings.select("k", "rule").iter_rows()}


def test_thresholds_come_from_the_config_file(tmp_path):
    path = tmp_path / "vee.toml"
    path.write_text(
        '[plausible_max]\nkwh = 10\nkvarh = 20\n[plausible_max.points]\n"P9" = 3\n'
        "[spike]\nfactor = 4\nmin_delta = 1\n[stuck]\nmin_intervals = 6\n[estimation]\nmax_gap_intervals = 2\n"
    )
    t = vee.load_thresholds(path)
    assert (
        t.kwh_max,
        t.kvarh_max,
        t.point_max,
        t.spike_factor,
        t.spike_min_delta,
        t.stuck_min_intervals,
        t.max_gap_intervals,
    ) == (10.0, 20.0, {"P9": 3.0}, 4.0, 1.0, 6, 2)
    assert vee.load_thresholds().max_gap_intervals == 8  # the shipped default: 2 hours


def test_series_max_per_channel_family_and_point_override():
    assert MAX.to_list() == [100.0, 100.0, 50.0, 50.0, 20.0, 20.0, 20.0, 20.0]


def test_negative_and_above_max():
    found = vee.interval_findings(frame(2, {1: 10.0, 2: -0.5, 3: 50.0, 4: 50.5}), MAX, T)  # kvarh_del of P1: max 50
    assert rules(found) == {(2, "negative"), (4, "above_max")}
    found = vee.interval_findings(frame(4, {1: 19.0, 2: 21.0}), MAX, T)  # P2's own limit 20
    assert rules(found) == {(2, "above_max")}


def test_spike_needs_both_neighbours_factor_and_delta():
    # i=3: 60 > 5 * max(10, 11) = 55 and 60 - 11 >= 10 -> spike
    assert rules(vee.interval_findings(frame(0, {2: 10.0, 3: 60.0, 4: 11.0}), MAX, T)) == {(3, "spike")}
    # 54 < 55: not a spike
    assert rules(vee.interval_findings(frame(0, {2: 10.0, 3: 54.0, 4: 11.0}), MAX, T)) == set()
    # 6 > 5 * 1 but exceeds the neighbour by only 5 < min_delta: not a spike (quiet night)
    assert rules(vee.interval_findings(frame(0, {2: 1.0, 3: 6.0, 4: 1.0}), MAX, T)) == set()
    # a missing neighbour (i=4 absent): not judged
    assert rules(vee.interval_findings(frame(0, {2: 10.0, 3: 60.0, 5: 11.0}), MAX, T)) == set()


def test_stuck_register_needs_n_consecutive_equal_nonzero_values():
    four = {1: 1.0, 2: 7.5, 3: 7.5, 4: 7.5, 5: 7.5, 6: 2.0}
    found = vee.interval_findings(frame(0, four), MAX, T)
    assert rules(found) == {(2, "stuck")}
    assert found.filter(pl.col("rule") == "stuck")["detail"].item() == "value 7.5 repeated in 4 consecutive intervals"
    assert rules(vee.interval_findings(frame(0, {1: 1.0, 2: 7.5, 3: 7.5, 4: 7.5, 5: 2.0}), MAX, T)) == set()  # 3 < 4
    assert rules(vee.interval_findings(frame(0, {i: 0.0 for i in range(1, 10)}), MAX, T)) == set()  # zero is not stuck
    # a gap breaks the run: 7.5 at 1,2 then 4,5 is two runs of 2
    assert rules(vee.interval_findings(frame(0, {1: 7.5, 2: 7.5, 4: 7.5, 5: 7.5}), MAX, T)) == set()
    # runs do not continue across series
    two = pl.concat([frame(0, {95: 3.0, 96: 3.0}), frame(1, {1: 3.0, 2: 3.0})])
    assert rules(vee.interval_findings(two, MAX, T)) == set()


def test_gaps_and_linear_interpolation():
    ranges = pl.DataFrame(
        {"point_idx": [0], "first_i": [1], "last_i": [20]},
        schema={"point_idx": pl.Int64, "first_i": pl.Int64, "last_i": pl.Int64},
    )
    readings = frame(0, {1: 1.0, 2: 10.0, 6: 22.0, 7: 5.0, 12: 5.0, 18: 4.0})
    findings, estimated = vee.gaps(readings, ranges, T)
    got = {
        (keys.interval_index(k), r["last_i"], r["detail"])
        for k, r in zip(findings["k"], findings.iter_rows(named=True))
        if keys.series(k) == 0
    }
    assert got == {
        (3, 5, "3 interval(s) missing; estimated by linear interpolation"),  # 3..5 between 10 and 22
        (8, 11, "4 interval(s) missing (not estimated)"),  # longer than 3
        (13, 17, "5 interval(s) missing (not estimated)"),
        (19, 20, "2 interval(s) missing (not estimated)"),  # at the end: no reading after it
    }
    # 10 -> 22 over 4 steps: 13, 16, 19
    est = {keys.interval_index(k): v for k, v in estimated.iter_rows() if keys.series(k) == 0}
    assert est == pytest.approx({3: 13.0, 4: 16.0, 5: 19.0})
    # the other three channels of point 0 have no reading at all: one gap each over the active range
    empty = findings.filter(keys.series() == 1)
    assert empty.select(keys.interval_index(), "last_i").rows() == [(1, 20)]
    # estimates never land on a real reading
    assert not set(estimated["k"]) & set(readings["k"])


def test_gaps_are_clipped_to_the_active_days():
    # active on day 1 (i 1..96) and day 3 (i 193..288), inactive on day 2
    ranges = pl.DataFrame({"point_idx": [0, 0], "first_i": [1, 193], "last_i": [96, 288]})
    readings = frame(0, {i: 1.0 + i / 1000 for i in [*range(1, 96), *range(193, 289)]})  # i=96 missing
    findings, estimated = vee.gaps(readings, ranges, T)
    own = findings.filter(keys.series() == 0)
    assert own.select(keys.interval_index(), "last_i").rows() == [(96, 96)]
    assert "not estimated" in own["detail"].item()  # the next real reading is after an inactive day
    assert estimated.filter(keys.series() == 0).height == 0


def test_deduplicate_keeps_the_last_read_and_reports_disagreement():
    rows = pl.DataFrame(
        {
            "k": [5, 3, 5, 3, 7],
            "v": [1.0, 2.0, 1.5, 2.0, 9.0],
            "file": [0, 0, 1, 0, 0],
            "row": [0, 1, 0, 2, 3],
        },
        schema={"k": pl.Int64, "v": pl.Float64, "file": pl.UInt32, "row": pl.UInt32},
    )
    kept, conflicts, dropped = vee.deduplicate(rows)
    assert kept.rows() == [(3, 2.0), (5, 1.5), (7, 9.0)]
    assert dropped == 2
    assert conflicts.rows() == [(5, "2 readings with different values: 1.0 / 1.5 (the last read is kept)")]


def test_hourly_quality_and_sums():
    # hour 0: intervals 1-4 real; hour 1: 5,6 real + 7,8 estimated; hour 2: only 9 and 10
    readings = frame(0, {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0, 6: 6.0, 9: 0.5, 10: 0.25})
    estimated = frame(0, {7: 7.0, 8: 8.0})
    hours = aggregates.hourly(readings, estimated)
    assert hours.select("h", "value", "real", "est", "quality").rows() == [
        (0, 10.0, 4, 0, "complete"),
        (1, 26.0, 2, 2, "estimated"),
        (2, 0.75, 2, 0, "partial"),
    ]


def test_a_complete_months_hours_are_its_values_four_by_four(monkeypatch):
    """A complete month with nothing estimated (aggregates._complete_hours): the same hourly frame, bit
    for bit, as the segment sums of the general path, on values whose sums depend on the order they are
    added in; so is a month whose gaps were all estimated. A month short of one key takes the general
    path."""
    rng = np.random.default_rng(11)
    n_series, n_i = 12, 30 * 96
    k = keys.encode(np.repeat(np.arange(3, 3 + n_series), n_i), np.tile(np.arange(1, n_i + 1), n_series))
    v = rng.lognormal(0.0, 6.0, k.size) * rng.choice([-1.0, 1.0], k.size)  # magnitudes from 1e-8 to 1e8
    readings = pl.DataFrame({"k": k, "v": v})
    none = pl.DataFrame(schema={"k": pl.Int64, "v": pl.Float64})
    fast = aggregates.hourly(readings, none)
    with monkeypatch.context() as m:
        m.setattr(keys, "complete", lambda *_: False)
        general = aggregates.hourly(readings, none)
    assert fast.height == n_series * n_i // 4 and set(fast["quality"]) == {"complete"}
    assert fast.equals(general) and fast.schema == general.schema
    short = readings.slice(1)  # the month's first interval missing: a partial hour, the general path
    assert aggregates.hourly(short, none)["quality"][0] == "partial"
    estimated = pl.DataFrame({"k": [k[0]], "v": [1.0]})
    assert aggregates.hourly(readings.slice(1), estimated)["quality"][0] == "estimated"
    # every gap estimated (a backfill's last month, its last day still to land): complete with the
    # estimates, the same frame as the general path's, their hours `estimated`
    gaps = np.sort(rng.choice(k.size, 700, replace=False))
    is_gap = np.zeros(k.size, dtype=bool)
    is_gap[gaps] = True
    real, filled = readings.filter(~pl.Series(is_gap)), pl.DataFrame({"k": k[gaps], "v": rng.normal(50, 9, gaps.size)})
    fast = aggregates.hourly(real, filled)
    with monkeypatch.context() as m:
        m.setattr(keys, "complete", lambda *_: False)
        general = aggregates.hourly(real, filled)
    assert fast.equals(general) and fast.schema == general.schema
    assert 600 < (fast["quality"] == "estimated").sum() <= 700 and set(fast["quality"]) == {"complete", "estimated"}
    assert fast.filter(pl.col("quality") == "estimated")["est"].sum() == 700


# --- rules of issue 13 ------------------------------------------------------------------------------------


def test_shipped_config_documents_every_threshold_at_its_default():
    # config/vee.toml holds every threshold, each at the value vee.Thresholds uses when a key is left out;
    # its only per-point limits are the sample's distributor frontier points (tens of MW each)
    shipped = vee.load_thresholds()
    assert set(shipped.point_max) == {f"PM-05{n}" for n in range(1, 6)}
    assert dataclasses.replace(shipped, point_max={}) == vee.Thresholds()
    text = (vee.config.config_dir() / "vee.toml").read_text()
    for section in ("[zero_consumption]", "[reactive_without_active]", "[history]", "[sum_check]", "[estimation]"):
        assert section in text


def test_new_thresholds_come_from_the_config_file(tmp_path):
    path = tmp_path / "vee.toml"
    path.write_text(
        "[zero_consumption]\nmin_intervals = 8\n[reactive_without_active]\nmin_intervals = 2\n"
        "[history]\nfactor_high = 4\nfactor_low = 0.1\nweeks = 5\nmin_readings = 2\nfloor = 0.5\n"
        "[sum_check]\ntolerance_pct = 2\ntolerance_min = 0.5\n"
        "[estimation]\nlike_day_max_intervals = 96\nlike_day_days = 2\nlike_day_window_days = 21\n"
    )
    t = vee.load_thresholds(path)
    assert (
        t.zero_consumption_min_intervals,
        t.reactive_min_intervals,
        t.history_factor_high,
        t.history_factor_low,
        t.history_weeks,
        t.history_min_readings,
        t.history_floor,
        t.sum_check_tolerance_pct,
        t.sum_check_tolerance_min,
        t.like_day_max_intervals,
        t.like_day_days,
        t.like_day_window_days,
    ) == (8, 2, 4.0, 0.1, 5, 2, 0.5, 2.0, 0.5, 96, 2, 21)
    assert t.max_gap_intervals == 8  # left out: the default


POINTS = pl.DataFrame(
    {
        "point_idx": [0, 1, 2, 3],
        "point_id": ["P1", "P2", "P3", "G1"],
        "participant": ["A"] * 4,
        "kind": ["consumption"] * 3 + ["generation"],
        "active_days": [30] * 4,
    },
    schema_overrides={"point_idx": pl.Int64},
)


def test_zero_consumption_is_96_consecutive_zero_kwh_del_intervals():
    def zeros(point: int, n: int, start: int = 1) -> dict[int, float]:
        return {**{i: 0.0 for i in range(start, start + n)}, start + n: 1.0}

    readings = pl.concat(
        [
            frame(0 * 4, zeros(0, 95)),  # P1: 95 zeros = 23.75 h: no finding
            frame(1 * 4, zeros(1, 96)),  # P2: exactly 24 h: a finding at the first zero
            frame(2 * 4, {**zeros(2, 97, start=11), 5: 0.0}),  # P3: 97 zeros from i=11 (and a lone zero at 5)
            frame(2 * 4 + 1, {i: 0.0 for i in range(1, 200)}),  # P3 kwh_rec: not the consumption channel
            frame(3 * 4, {i: 0.0 for i in range(1, 200)}),  # G1 is a generation point
        ]
    ).sort("k")
    found = vee.zero_consumption(readings, POINTS, vee.Thresholds())
    assert found.schema == {"k": pl.Int64, "rule": pl.String, "detail": pl.String, "value": pl.Float64}
    assert found.select(s=keys.series(), i=keys.interval_index(), d=pl.col("detail")).rows() == [
        (4, 1, "kwh_del 0 in 96 consecutive intervals (24.0 h) of a consumption point"),
        (8, 11, "kwh_del 0 in 97 consecutive intervals (24.25 h) of a consumption point"),
    ]
    # a missing interval splits the run: 60 + 60 zeros are two runs of 15 h, no finding
    split = frame(0, {**{i: 0.0 for i in range(1, 61)}, **{i: 0.0 for i in range(62, 122)}})
    assert vee.zero_consumption(split, POINTS, vee.Thresholds()).height == 0


def test_reactive_without_active_needs_both_active_channels_present_and_zero():
    def point(p: int, n: int, kvarh_ch: int = 2, kwh_rec_missing: int | None = None) -> pl.DataFrame:
        intervals = range(1, n + 1)
        return pl.concat(
            [
                frame(p * 4 + 0, {i: 0.0 for i in intervals}),
                frame(p * 4 + 1, {i: 0.0 for i in intervals if i != kwh_rec_missing}),
                frame(p * 4 + kvarh_ch, {i: 2.0 + i for i in intervals}),
            ]
        )

    readings = pl.concat(
        [
            point(0, 4),  # 4 intervals = the threshold: a finding on kvarh_del
            point(1, 3),  # 3: none
            point(2, 5, kvarh_ch=3),  # 5 on kvarh_rec: a finding on kvarh_rec
            point(3, 6, kwh_rec_missing=3),  # kwh_rec missing at 3: runs of 2 and 3, none
            frame(4 * 4 + 0, {i: 0.0 for i in range(1, 9)}),  # P5: kwh_rec 0.1 (active energy received): none
            frame(4 * 4 + 1, {i: 0.1 for i in range(1, 9)}),
            frame(4 * 4 + 2, {i: 5.0 for i in range(1, 9)}),
        ]
    ).sort("k")
    found = vee.reactive_without_active(readings, vee.Thresholds())
    assert found.select(s=keys.series(), i=keys.interval_index(), v=pl.col("value")).rows() == [
        (2, 1, 3.0),
        (11, 1, 3.0),
    ]
    assert found["detail"][0] == (
        "reactive energy (up to 6.0 kVArh) in 4 consecutive intervals while kwh_del and kwh_rec are both 0"
    )
    assert vee.reactive_without_active(readings, vee.Thresholds(reactive_min_intervals=5)).height == 1


MONTH_START = datetime(2026, 4, 1)


def history_rows(series: int, i: int, values: list[float | None], flagged: list[bool] | None = None) -> pl.DataFrame:
    """The same interval i of the month 1..len(values) weeks earlier (None: no reading that week)."""
    flagged = flagged or [False] * len(values)
    rows = [
        (series, MONTH_START + timedelta(minutes=15 * (i - 672 * w)), v, f)
        for w, (v, f) in enumerate(zip(values, flagged), start=1)
        if v is not None
    ]
    return pl.DataFrame(rows, schema=vee.HISTORY_SCHEMA, orient="row")


@pytest.fixture(params=["whole", "halves"])
def halves(request, monkeypatch):
    """The history rules judged as one block, and as two halves of the series side by side (what a
    month of more than about 180 points does)."""
    if request.param == "halves":
        monkeypatch.setattr(vee, "_HALVES_FROM", 0)
    return request.param


def test_high_and_low_against_the_same_weekday_and_interval_of_the_previous_four_weeks(halves):
    i = 124  # ends 2 April 07:00; the same interval 1..4 weeks earlier ends 26, 19, 12 and 5 March 07:00
    cases = {  # series: (value, four previous weeks) -> expected rule
        0: (30.0, [10.0, 10.0, 10.0, None]),  # exactly 3 x 10: no finding
        1: (30.01, [10.0, 10.0, 10.0, None]),  # just above: high
        2: (29.99, [10.0, 10.0, 10.0, None]),
        3: (2.0, [10.0, 10.0, 10.0, 10.0]),  # exactly 0.2 x 10: no finding
        4: (1.99, [10.0, 10.0, 10.0, 10.0]),  # just below: low
        5: (1000.0, [10.0, 10.0, None, None]),  # only 2 weeks: not judged
        6: (1000.0, [1.0, 1.0, 1.0, 1.0]),  # mean 1.0 is not above the floor: not judged
        7: (1000.0, [1.01, 1.01, 1.01, 1.01]),  # mean 1.01: judged
        8: (0.0, [9.0, 10.0, 11.0, 500.0]),  # the flagged 500 is not history: mean 10, low
        9: (35.0, [9.0, 10.0, 11.0, 500.0]),  # would be low against 132.5 with the 500; high against 10
    }
    readings = pl.concat([frame(s, {i: v}) for s, (v, _) in cases.items()]).sort("k")
    history = pl.concat(
        [history_rows(s, i, weeks, [False, False, False, s in (8, 9)]) for s, (_, weeks) in cases.items()]
    )
    found = vee.vs_history(readings, history, MONTH_START, vee.Thresholds())
    got = {keys.series(k): r for k, r in found.select("k", "rule").iter_rows()}
    assert got == {
        1: "high_vs_history",
        4: "low_vs_history",
        7: "high_vs_history",
        8: "low_vs_history",
        9: "high_vs_history",
    }
    detail = found.filter(keys.series() == 1)["detail"].item()
    assert detail == (
        "30.01 above 3.0 x the mean 10.0 of the same weekday and interval in the previous 4 weeks "
        "(3 real readings without findings)"
    )


def test_history_inside_the_month_comes_from_the_month_and_its_findings(halves):
    # 29 April 07:00 against 22, 15, 8 and 1 April: all in the month; the 8 April reading has a finding
    i_now = 28 * 96 + 28
    earlier = {i_now - 672 * w: 10.0 for w in (1, 2, 3, 4)}
    earlier[i_now - 672 * 3] = 90.0
    readings = frame(0, {**earlier, i_now: 31.0})
    findings = pl.DataFrame({"k": [i_now - 672 * 3], "rule": ["spike"]})
    history = vee.history_from_month(readings, findings, MONTH_START)
    assert history.filter("flagged")["interval_end"].to_list() == [datetime(2026, 4, 8, 7)]
    found = vee.vs_history(readings, history, MONTH_START, vee.Thresholds())
    assert found.select(keys.interval_index(), "rule").rows() == [(i_now, "high_vs_history")]


def test_the_halves_of_a_large_month_find_what_one_block_finds(monkeypatch):
    """vs_history_of as the metering job calls it (the month's own readings as history, flagged keys
    left out, the weeks before), on 40 series with random values: the same findings, in the same order."""
    rng = np.random.default_rng(7)
    n_series, n_i = 40, 31 * 96
    k = keys.encode(np.repeat(np.arange(n_series), n_i), np.tile(np.arange(1, n_i + 1), n_series))
    readings = pl.DataFrame({"k": k, "v": rng.gamma(2.0, 5.0, k.size)}).filter(pl.Series(rng.random(k.size) > 0.05))
    weeks = 4 * 672
    before = pl.DataFrame(
        {
            "series": np.repeat(np.arange(n_series), weeks),
            "interval_end": np.tile(
                np.array([MONTH_START - timedelta(minutes=15 * j) for j in range(weeks)], dtype="datetime64[us]"),
                n_series,
            ),
            "v": rng.gamma(2.0, 5.0, n_series * weeks),
            "flagged": rng.random(n_series * weeks) < 0.05,
        }
    )
    flagged = readings.sample(500, seed=1).select("k")
    before = vee.usable_history(before, MONTH_START)
    whole = vee.vs_history_of(readings, before, flagged, MONTH_START, vee.Thresholds())
    monkeypatch.setattr(vee, "_HALVES_FROM", 0)
    halves = vee.vs_history_of(readings, before, flagged, MONTH_START, vee.Thresholds())
    assert whole.height > 1000 and {"high_vs_history", "low_vs_history"} <= set(whole["rule"])
    assert halves.equals(whole)


def test_a_complete_month_is_judged_as_its_values_reshaped(monkeypatch):
    """A month holding every interval of every series, in key order, is the history arrays' month as
    it is (vee._month_array): the same findings as through the general path, keys split and scattered,
    whole and in halves. A month short of one key, or holding another instead, takes the general path."""
    rng = np.random.default_rng(5)
    n_series, n_i = 40, 31 * 96
    k = keys.encode(np.repeat(np.arange(n_series), n_i), np.tile(np.arange(1, n_i + 1), n_series))
    readings = pl.DataFrame({"k": k, "v": rng.gamma(2.0, 5.0, k.size)})
    weeks = 4 * 672
    before = pl.DataFrame(
        {
            "series": np.repeat(np.arange(n_series), weeks),
            "j": np.tile(np.arange(-weeks + 1, 1), n_series),
            "v": rng.gamma(2.0, 5.0, n_series * weeks),
        },
        schema=vee.BEFORE_SCHEMA,
    )
    flagged = readings.sample(500, seed=1).select("k")
    assert keys.complete(k, 0, n_series, n_i)
    assert not keys.complete(k[1:], 0, n_series, n_i)
    shifted = k.copy()
    shifted[7] = keys.encode(0, 0)  # an interval 0 in place of interval 8: same count, not the month
    assert not keys.complete(np.sort(shifted), 0, n_series, n_i)
    found = {}
    for path in ("reshaped", "scattered"):
        if path == "scattered":
            monkeypatch.setattr(keys, "complete", lambda *_: False)
        for split in (4_000_000_000, 0):
            monkeypatch.setattr(vee, "_HALVES_FROM", split)
            found[path, split] = vee.vs_history_of(readings, before, flagged, MONTH_START, vee.Thresholds())
    first = found["reshaped", 4_000_000_000]
    assert first.height > 1000 and {"high_vs_history", "low_vs_history"} <= set(first["rule"])
    assert all(f.equals(first) for f in found.values())


def test_future_interval_is_later_than_the_run_time_in_local_time():
    ends = pl.DataFrame(
        {
            "interval_end": [
                datetime(2026, 4, 10, 10, 0),
                datetime(2026, 4, 10, 10, 15),
                datetime(2026, 4, 10, 10, 30),
                None,
            ]
        }
    )
    naive = ends.select(vee.future_interval(datetime(2026, 4, 10, 10, 15)))["interval_end"].to_list()
    assert naive == [False, False, True, False]  # ending exactly at the run time is complete
    # Airflow's run time is UTC: 16:14 UTC is 10:14 in Guatemala (UTC-6)
    aware = ends.select(vee.future_interval(datetime(2026, 4, 10, 16, 14, tzinfo=UTC)))
    assert aware["interval_end"].to_list() == [False, True, True, False]
    assert vee.FUTURE_REASON == "interval_end is later than the time of the run"


def test_series_stats_count_rows_and_distinct_intervals_and_find_the_edges_by_hand():
    """The readings come sorted by key, so the series are grouped as runs of rows."""
    readings = pl.concat(
        [
            frame(0, {3: 1.5, 4: -2.0, 9: 7.25}),
            pl.DataFrame({"k": [keys.encode(0, 4)], "v": [8.0]}),  # interval 4 read twice
            frame(5, {1: 0.0}),
            frame(6, {2976: 3.0, 100: 4.0}),
        ]
    ).sort("k")
    stats = vee.series_stats(readings)
    assert stats.select("series", "rows", "distinct_intervals", "first", "last", "min_value", "max_value").rows() == [
        (0, 4, 3, 3, 9, -2.0, 8.0),
        (5, 1, 1, 1, 1, 0.0, 0.0),
        (6, 2, 2, 100, 2976, 3.0, 4.0),
    ]


def test_history_keys_of_a_large_market_do_not_wrap():
    """hk of series 200,000 (50,000 points): past what a 32-bit series times HISTORY_SPAN holds."""
    history = pl.DataFrame(
        {"series": [200_000], "interval_end": [MONTH_START - timedelta(minutes=15)], "v": [1.5], "flagged": [False]},
        schema=vee.HISTORY_SCHEMA,
    )
    hk = vee.good_history(history, MONTH_START)["hk"].item()
    assert hk == 200_000 * vee.HISTORY_SPAN - 1 + vee.HISTORY_OFFSET
