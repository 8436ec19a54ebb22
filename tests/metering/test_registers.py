"""register_reads: reading, quarantine with reasons, mapping to series and the sum_check, by hand."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.errors import InputError
from pipelines.metering import keys, registers, registry, vee
from pipelines.periods import Month

REGISTRY = pl.DataFrame(
    {
        "point_id": ["P1", "P2"],
        "participant": ["A", "A"],
        "kind": ["consumption", "consumption"],
        "node": ["N", "N"],
        "device_id": ["D1", "D2"],
        "valid_from": [date(2025, 1, 1), date(2025, 1, 1)],
        "valid_to": [None, date(2026, 4, 10)],
    },
    schema_overrides={"valid_to": pl.Date},
)
MONTH = Month.parse("2026-04")
POINTS = registry.month_points(REGISTRY, MONTH)  # P1 -> 0, P2 -> 1
DEVICE_DAYS = registry.device_days(REGISTRY, MONTH, POINTS)
T = vee.Thresholds()


def write(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "register_reads.csv").write_text("device_id,read_at,channel,value\n" + "\n".join(lines) + "\n")
    return tmp_path


def test_bad_rows_are_quarantined_with_their_reason_and_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        [
            "D1,2026-04-01 00:00,kwh_del,1000",  # line 2: good
            "D9,2026-04-01 00:00,kwh_del,5",  # 3: unknown device
            "D1,2026-04-02 00:00,kwh_del,abc",  # 4: not a number
            "D1,2026-04-31 00:00,kwh_del,1100",  # 5: no such day
            "D1,2026-04-03 00:00,kwh_del,990",  # 6: below the previous good read (1000)
            "D1,2026-04-04 00:00,kwh_deliv,1200",  # 7: unknown channel
            "D1,2026-04-05 00:00,kwh_del,",  # 8: blank value
            "D2,2026-04-11 00:00,kwh_del,10",  # 9: D2's row ends 10 April: a midnight read closing it is fine
            "D2,2026-04-12 00:00,kwh_del,20",  # 10: D2 not registered on 11-12 April
            "D1,2026-04-06 00:00,kwh_del,1300",  # 11 and 12: the same read twice counts once
            "D1,2026-04-06 00:00,kwh_del,1300",
            "D1,2026-04-07 00:00,kwh_del,1400",  # 13 and 14: the same time with different values
            "D1,2026-04-07 00:00,kwh_del,1401",
        ],
    )
    reads = registers.validate(registers.read(tmp_path), REGISTRY)
    reasons = dict(zip(reads["line"], reads["reason"]))
    assert reasons == {
        2: None,
        3: "unknown device 'D9' at 2026-04-01 00:00:00.000000",
        4: "unparsable value (float)",
        5: "unparsable read_at (minute)",
        6: "register went backwards: 990.0 after 1000.0 at 2026-04-01 00:00:00.000000",
        7: "unknown channel 'kwh_deliv'",
        8: "missing value",
        9: None,
        10: "unknown device 'D2' at 2026-04-12 00:00:00.000000",
        11: None,  # line 12 dropped as an identical repeat
        13: "conflicting reads of D1 kwh_del at 2026-04-07 00:00:00.000000 (different values)",
        14: "conflicting reads of D1 kwh_del at 2026-04-07 00:00:00.000000 (different values)",
    }
    bad = registers.quarantined(reads)
    assert bad.filter(pl.col("line") == 4)["raw_value"].item() == "abc"


def test_absent_file_and_missing_column(tmp_path: Path) -> None:
    assert registers.read(tmp_path) is None
    (tmp_path / "register_reads.csv").write_text("device_id,read_at,value\nD1,2026-04-01 00:00,1\n")
    with pytest.raises(InputError, match="missing column.*channel"):
        registers.read(tmp_path)


def ones(series: int, intervals: range, v: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"k": [keys.encode(series, i) for i in intervals], "v": [v] * len(intervals)})


def reads(*rows: tuple[int, int, float]) -> pl.DataFrame:
    """(series, i, value); read_at = 1 April + 15 min * i, line = position + 2."""
    return pl.DataFrame(
        [
            (s, i, datetime(2026, 4, 1) + (datetime(2026, 4, 1, 0, 15) - datetime(2026, 4, 1)) * i, v, n + 2)
            for n, (s, i, v) in enumerate(rows)
        ],
        schema=registers.MAPPED_SCHEMA,
        orient="row",
    )


def test_sum_check_tolerance_at_the_limit_and_one_step_either_side() -> None:
    readings = pl.concat([ones(0, range(1, 97)), ones(4, range(1, 97), 10.0)]).sort("k")  # 96 kWh; 960 kWh
    cases = {
        97.0: False,  # |96 - 97| = 1 = max(1% of 97, 1): at the limit, passes
        97.01: True,  # just over
        95.01: False,
        94.99: True,
    }
    for advance, fails in cases.items():
        found, skipped = registers.sum_check(reads((0, 0, 1000.0), (0, 96, 1000.0 + advance)), readings, T)
        assert (found.height == 1) == fails, advance
        assert skipped.height == 0
    # 1% of a larger difference: 960 against 950 (tolerance 9.5): fails; against 955 (9.55): passes
    found, _ = registers.sum_check(reads((4, 0, 0.0), (4, 96, 950.0)), readings, T)
    assert found.select("k", "value").rows() == [(keys.encode(4, 1), 960.0)]
    assert found["detail"].item() == (
        "intervals after the register read 2026-04-01 00:00:00.000000 up to "
        "2026-04-02 00:00:00.000000 add up to 960.0, the register advanced 950.0 "
        "(0.0 -> 950.0); tolerance 9.5"
    )
    assert registers.sum_check(reads((4, 0, 0.0), (4, 96, 955.0)), readings, T)[0].height == 0


def test_sum_check_counts_intervals_strictly_after_the_first_read() -> None:
    # reads at i=10 and i=20: intervals 11..20 (10 of them, 1 kWh each); 3 reads make 2 pairs
    readings = ones(0, range(1, 97))
    found, skipped = registers.sum_check(reads((0, 10, 0.0), (0, 20, 10.0), (0, 30, 30.0)), readings, T)
    assert found.select(i=keys.interval_index(), v=pl.col("value")).rows() == [(21, 10.0)]  # 21..30: 10, not 20
    assert skipped.height == 0


def test_a_pair_with_a_missing_interval_is_skipped_and_reported() -> None:
    readings = pl.concat([ones(0, range(1, 50)), ones(0, range(51, 97))])  # interval 50 missing
    found, skipped = registers.sum_check(reads((0, 0, 0.0), (0, 96, 500.0)), readings, T)
    assert found.height == 0  # 95 against 500 would fail: never silently passed, never judged
    assert skipped.select("series", "from_line", "to_line", "reason").rows() == [
        (0, 2, 3, "sum_check skipped: 1 of the 96 intervals between the reads are missing")
    ]


def test_month_sum_check_maps_devices_and_reports_pairs_reaching_outside_the_month(tmp_path: Path) -> None:
    write(
        tmp_path,
        [
            "D1,2026-03-31 00:00,kwh_del,900",  # line 2: March
            "D1,2026-04-01 06:00,kwh_del,1000",  # 3: the pair March 31 - 1 April 06:00 reaches outside April
            "D1,2026-04-02 00:00,kwh_del,1072",  # 4: intervals 25..96 = 72 kWh: passes
            "D1,2026-04-02 00:00,kvarh_rec,50",  # 5 (series 3)
            "D1,2026-04-03 00:00,kvarh_rec,80",  # 6: 30 against 96 x 0.5 = 48: a finding
            "D2,2026-04-11 00:00,kwh_del,10",  # 7: closes D2's last day
            "D2,2026-04-10 00:00,kwh_del,5",  # 8
        ],
    )
    checked = registers.validate(registers.read(tmp_path), REGISTRY)
    mapped = registers.to_series(checked, DEVICE_DAYS, MONTH)
    assert mapped.select("series", "i", "line").rows() == [
        (0, 24, 3),
        (0, 96, 4),
        (3, 96, 5),
        (3, 192, 6),
        (4, 864, 8),
        (4, 960, 7),
    ]
    readings = pl.concat([ones(0, range(1, 97)), ones(3, range(97, 193), 0.5), ones(4, range(865, 961), 0.05)]).sort(
        "k"
    )
    found, skipped = registers.month_sum_check(checked, DEVICE_DAYS, MONTH, readings, T)
    assert found.select(s=keys.series(), i=keys.interval_index(), v=pl.col("value")).rows() == [(3, 97, 48.0)]
    assert skipped.select("series", "from_line", "to_line").rows() == [(0, 2, 3)]
    assert skipped["reason"].item() == (
        "sum_check not done: the reads 2026-03-31 00:00:00.000000 and "
        "2026-04-01 06:00:00.000000 of D1 kwh_del reach outside 2026-04"
    )
    # a pair closing at the month's first midnight covers only March: the March run checks it, not April's
    write(tmp_path, ["D1,2026-03-31 00:00,kwh_del,900", "D1,2026-04-01 00:00,kwh_del,1000"])
    checked = registers.validate(registers.read(tmp_path), REGISTRY)
    assert registers.month_sum_check(checked, DEVICE_DAYS, MONTH, readings, T)[1].height == 0
    assert (
        registers.month_sum_check(
            checked,
            registry.device_days(REGISTRY, MONTH.previous, registry.month_points(REGISTRY, MONTH.previous)),
            MONTH.previous,
            readings,
            T,
        )[1].height
        == 1
    )  # March's readings given here lack 31 March
