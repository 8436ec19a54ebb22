"""The meter registry (`metering_points`): which device is which metering point, when, and how the
administrator reaches it. Rows carry validity ranges, so history is kept, not only the latest state."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.inputs import Schema, read_table

REGISTRY_SCHEMA: Schema = {
    "point_id": "str", "participant": "str", "kind": "str", "node": "str", "device_id": "str",
    "serial": "str", "connectivity": "str", "vpn_id": "str", "public_ip": "str", "public_port": "int",
    "private_ip": "str", "private_port": "int", "valid_from": "date", "valid_to": "date",
}


def load_registry(input_dir: Path) -> pl.DataFrame:
    """Typed registry rows; `valid_to` null means still active."""
    return read_table(input_dir, "metering_points", REGISTRY_SCHEMA)


def active_in(registry: pl.DataFrame, first_day: pl.Expr | object, last_day: pl.Expr | object) -> pl.DataFrame:
    """Rows whose validity [valid_from, valid_to] overlaps the inclusive day range."""
    return registry.filter(
        (pl.col("valid_from") <= last_day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= first_day))
    )
