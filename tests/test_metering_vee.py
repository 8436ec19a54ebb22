"""VEE rules, interpolation, deduplication and hourly quality on tiny keyed series, values by hand.

Keys: k = series * 8192 + i (series = point_idx * 4 + channel, i = interval of the month)."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.metering import aggregates, vee
from pipelines.metering.readings import KEY_SPAN

T = vee.Thresholds(kwh_max=100.0, kvarh_max=50.0, point_max={"P2": 20.0}, spike_factor=5.0, spike_min_delta=10.0,
                   stuck_min_intervals=4, max_gap_intervals=3)
MAX = vee.series_max(["P1", "P2"], T)  # series 0-3: P1, 4-7: P2


def frame(series: int, values: dict[int, float]) -> pl.DataFrame:
    return pl.DataFrame({"k": [series * KEY_SPAN + i for i in values], "v": list(values.values())}).sort("k")


def rules(findings: pl.DataFrame) -> set[tuple[int, str]]:
    return {(k % KEY_SPAN, r) for k, r in findings.select("k", "rule").iter_rows()}


def test_thresholds_come_from_the_config_file(tmp_path):
    path = tmp_path / "vee.toml"
    path.write_text('[plausible_max]\nkwh = 10\nkvarh = 20\n[plausible_max.points]\n"P9" = 3\n'
                    "[spike]\nfactor = 4\nmin_delta = 1\n[stuck]\nmin_intervals = 6\n[estimation]\nmax_gap_intervals = 2\n")
    t = vee.load_thresholds(path)
    assert (t.kwh_max, t.kvarh_max, t.point_max, t.spike_factor, t.spike_min_delta, t.stuck_min_intervals,
            t.max_gap_intervals) == (10.0, 20.0, {"P9": 3.0}, 4.0, 1.0, 6, 2)
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
    ranges = pl.DataFrame({"point_idx": [0], "first_i": [1], "last_i": [20]}, schema={
        "point_idx": pl.Int64, "first_i": pl.Int64, "last_i": pl.Int64})
    readings = frame(0, {1: 1.0, 2: 10.0, 6: 22.0, 7: 5.0, 12: 5.0, 18: 4.0})
    findings, estimated = vee.gaps(readings, ranges, T)
    got = {(k % KEY_SPAN, r["last_i"], r["detail"]) for k, r in zip(findings["k"], findings.iter_rows(named=True)) if k // KEY_SPAN == 0}
    assert got == {
        (3, 5, "3 interval(s) missing; estimated by linear interpolation"),  # 3..5 between 10 and 22
        (8, 11, "4 interval(s) missing (not estimated)"),  # longer than 3
        (13, 17, "5 interval(s) missing (not estimated)"),
        (19, 20, "2 interval(s) missing (not estimated)"),  # at the end: no reading after it
    }
    # 10 -> 22 over 4 steps: 13, 16, 19
    est = {k % KEY_SPAN: v for k, v in estimated.iter_rows() if k // KEY_SPAN == 0}
    assert est == pytest.approx({3: 13.0, 4: 16.0, 5: 19.0})
    # the other three channels of point 0 have no reading at all: one gap each over the active range
    empty = findings.filter(pl.col("k") // KEY_SPAN == 1)
    assert empty.select(pl.col("k") % KEY_SPAN, "last_i").rows() == [(1, 20)]
    # estimates never land on a real reading
    assert not set(estimated["k"]) & set(readings["k"])


def test_gaps_are_clipped_to_the_active_days():
    # active on day 1 (i 1..96) and day 3 (i 193..288), inactive on day 2
    ranges = pl.DataFrame({"point_idx": [0, 0], "first_i": [1, 193], "last_i": [96, 288]})
    readings = frame(0, {i: 1.0 + i / 1000 for i in [*range(1, 96), *range(193, 289)]})  # i=96 missing
    findings, estimated = vee.gaps(readings, ranges, T)
    own = findings.filter(pl.col("k") // KEY_SPAN == 0)
    assert own.select(pl.col("k") % KEY_SPAN, "last_i").rows() == [(96, 96)]
    assert "not estimated" in own["detail"].item()  # the next real reading is after an inactive day
    assert estimated.filter(pl.col("k") // KEY_SPAN == 0).height == 0


def test_deduplicate_keeps_the_last_read_and_reports_disagreement():
    rows = pl.DataFrame({
        "k": [5, 3, 5, 3, 7], "v": [1.0, 2.0, 1.5, 2.0, 9.0],
        "file": [0, 0, 1, 0, 0], "row": [0, 1, 0, 2, 3],
    }, schema={"k": pl.Int64, "v": pl.Float64, "file": pl.UInt32, "row": pl.UInt32})
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
