"""Registries for the delivery tests and the warehouse test of a delivery review (helpers only, no tests here)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

REGISTRY_COLUMNS = [
    "point_id",
    "participant",
    "kind",
    "node",
    "device_id",
    "serial",
    "connectivity",
    "vpn_id",
    "public_ip",
    "public_port",
    "private_ip",
    "private_port",
    "valid_from",
    "valid_to",
]


def write_registry(directory: Path, points: list[tuple[str, str, str, str, str]]) -> None:
    """points: (point_id, participant, kind, valid_from, valid_to or '')."""
    rows = [
        {
            "point_id": p,
            "participant": who,
            "kind": kind,
            "node": "GUA-230",
            "device_id": f"D-{p}",
            "serial": f"S-{p}",
            "connectivity": "vpn_direct",
            "vpn_id": f"VPN-{who}",
            "public_ip": "",
            "public_port": "",
            "private_ip": "10.1.1.100",
            "private_port": "7701",
            "valid_from": start,
            "valid_to": end,
        }
        for p, who, kind, start, end in points
    ]
    pl.DataFrame(rows, schema=dict.fromkeys(REGISTRY_COLUMNS, pl.String)).write_csv(directory / "metering_points.csv")


def write_sample_registry(directory: Path) -> None:
    """Five participants with three consumption points each; ALFA also has OLD (retires 5 April),
    DELTA a generation point, EPS a generation point starting 10 April."""
    points = [
        (f"PM-{p}-{i}", p, "consumption", "2025-01-01", "")
        for p in ("ALFA", "BETA", "GAMMA", "DELTA", "EPS")
        for i in range(3)
    ]
    points += [
        ("PM-DELTA-G", "DELTA", "generation", "2025-01-01", ""),
        ("PM-EPS-G", "EPS", "generation", "2026-04-10", ""),
        ("PM-ALFA-OLD", "ALFA", "consumption", "2024-01-01", "2026-04-05"),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    write_registry(directory, points)
