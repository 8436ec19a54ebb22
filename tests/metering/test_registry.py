"""Registry rules (check_frame + the GX suite) and the month view of the registry."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from pipelines.metering import registry as reg
from pipelines.periods import Month
from tests.metering.fixtures import REGISTRY, write_registry

APRIL = Month.parse("2026-04")

CHECKS = [
    "_point_overlap",
    "_device_overlap",
    "_device_serial_overlap",
    "_endpoint_overlap",
    "_public_ip_problem",
    "_private_ip_problem",
    "_public_port_missing",
    "_vpn_id_missing",
    "_validity_reversed",
]


def load(tmp_path, rows):
    write_registry(tmp_path, rows)
    return reg.load_registry(tmp_path)


def problems(frame: pl.DataFrame) -> dict[str, list[str]]:
    checks = reg.check_frame(frame)
    return {
        c: [v for v in checks[c].to_list() if v is not None] for c in CHECKS if checks[c].null_count() < checks.height
    }


def test_clean_registry_has_no_problems(tmp_path):
    assert problems(load(tmp_path, REGISTRY)) == {}


def test_history_rows_may_share_a_point_when_ranges_do_not_overlap(tmp_path):
    rows = [
        "P1,PA,consumption,N1,DEV1,S1,vpn_direct,VPN-A,,,10.1.1.1,7701,2025-01-01,2026-03-19",
        "P1,PA,consumption,N1,DEV7,S7,vpn_direct,VPN-A,,,10.1.1.1,7701,2026-03-20,",
    ]
    assert problems(load(tmp_path, rows)) == {}
    overlapping = [rows[0], rows[1].replace("2026-03-20", "2026-03-19")]  # both valid on the 19th
    assert problems(load(tmp_path, overlapping)) == {"_point_overlap": ["P1", "P1"]}


@pytest.mark.parametrize(
    "row, check, value",
    [
        # the same device on another point at the same time (serial differs: readings carry only device_id)
        ("P9,PA,consumption,N1,DEV1,S9,vpn_direct,VPN-A,,,10.1.1.9,7701,2026-04-01,", "_device_overlap", "DEV1"),
        # the same public endpoint as P1 (190.56.10.1:7001) while both are active
        (
            "P9,PA,consumption,N1,DEV9,S9,public_ip,,190.56.10.1,7001,10.1.1.9,7701,2026-04-01,",
            "_endpoint_overlap",
            "190.56.10.1:7001",
        ),
        (
            "P9,PA,consumption,N1,DEV9,S9,public_ip,,10.9.9.9,7009,10.1.1.9,7701,2026-04-01,",
            "_public_ip_problem",
            "10.9.9.9 is private",
        ),
        (
            "P9,PA,consumption,N1,DEV9,S9,public_ip,,190.56.10.9,7009,190.56.10.10,7701,2026-04-01,",
            "_private_ip_problem",
            "190.56.10.10 is public",
        ),
        (
            "P9,PA,consumption,N1,DEV9,S9,public_ip,,not-an-ip,7009,10.1.1.9,7701,2026-04-01,",
            "_public_ip_problem",
            "not-an-ip is not an IP address",
        ),
        (
            "P9,PA,consumption,N1,DEV9,S9,public_ip,,190.56.10.9,,10.1.1.9,7701,2026-04-01,",
            "_public_port_missing",
            "P9",
        ),
        ("P9,PA,consumption,N1,DEV9,S9,vpn_provider_single,,,,10.1.1.9,7701,2026-04-01,", "_vpn_id_missing", "P9"),
        (
            "P9,PA,consumption,N1,DEV9,S9,vpn_direct,VPN-A,,,10.1.1.9,7701,2026-04-10,2026-04-01",
            "_validity_reversed",
            "P9 2026-04-10..2026-04-01",
        ),
    ],
)
def test_each_cross_row_rule(tmp_path, row, check, value):
    found = problems(load(tmp_path, [*REGISTRY, row]))
    assert value in found.get(check, []), found
    assert reg.has_problems(load(tmp_path, [*REGISTRY, row]))


def test_same_endpoint_is_fine_once_the_first_point_retired(tmp_path):
    rows = [
        "P1,PA,consumption,N1,DEV1,S1,public_ip,,190.56.10.1,7001,10.1.1.1,7701,2025-01-01,2026-03-31",
        "P2,PA,consumption,N1,DEV2,S2,public_ip,,190.56.10.1,7001,10.1.1.2,7701,2026-04-01,",
    ]
    assert problems(load(tmp_path, rows)) == {}


def test_gx_suite_reports_every_failing_rule(tmp_path):
    rows = [
        *REGISTRY,
        "P9,PA,consumption,N1,DEV1,S9,vpn_direct,,,,10.1.1.9,70000,2026-04-01,",  # device clash, no vpn_id, port
        "P8,PA,storage,N1,DEV8,S8,satellite,,,,10.1.1.8,7701,2026-04-01,",
    ]  # unknown kind and connectivity
    results = reg.validate(load(tmp_path, rows))
    failed = {(r.check, r.column) for r in results if not r.success}
    assert failed == {
        ("expect_column_values_to_be_null", "_device_overlap"),
        ("expect_column_values_to_be_null", "_vpn_id_missing"),
        ("expect_column_values_to_be_between", "private_port"),
        ("expect_column_values_to_be_in_set", "kind"),
        ("expect_column_values_to_be_in_set", "connectivity"),
    }
    assert all(r.severity == "error" for r in results if not r.success)
    assert all(r.success for r in reg.validate(load(tmp_path, REGISTRY)))


def test_month_view(tmp_path):
    registry = load(tmp_path, [*REGISTRY, "P4,PB,consumption,N2,DEV4,S4,vpn_direct,VPN-B,,,10.2.1.4,7701,2026-05-01,"])
    points = reg.month_points(registry, APRIL)
    # P4 starts in May: not part of April; points numbered participant by participant
    assert points.select("point_idx", "point_id", "participant", "active_days").rows() == [
        (0, "P1", "PA", 30),
        (1, "P2", "PA", 15),
        (2, "P3", "PB", 10),
    ]
    days = reg.device_days(registry, APRIL, points)
    assert days.filter(pl.col("device_id") == "DEV2")["day"].min() == 15  # 0-based: the 16th
    assert days.filter(pl.col("device_id") == "DEV3")["day"].max() == 9  # the 10th
    ranges = reg.point_day_ranges(registry, APRIL, points)
    assert ranges.sort("point_idx").rows() == [(0, 1, 2880), (1, 15 * 96 + 1, 2880), (2, 1, 960)]


def test_active_in_keeps_working_for_the_delivery_check(tmp_path):
    registry = load(tmp_path, REGISTRY)
    assert reg.active_in(registry, date(2026, 4, 11), date(2026, 4, 15))["point_id"].to_list() == ["P1"]
