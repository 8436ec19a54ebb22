"""The meter registry (`metering_points`): which device is which metering point, when, and how the
administrator reaches it. Rows carry validity ranges, so history is kept, not only the latest state.

A point may have several rows over time (a meter replaced, an address changed): its ranges must not
overlap. Everything that must be unique is therefore unique *at any moment*, not across history.

`participant` and `point_id` name things downstream (lake partitions such as `participant=P/`,
report files), so a value that could act as a path (`/`, `\\`, a control character, `.` or `..`) is
rejected here, with its line: no real market participant or point code has one."""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.inputs import Schema, read_table
from pipelines.metering.keys import INTERVALS_PER_DAY
from pipelines.periods import Month

REGISTRY_SCHEMA: Schema = {
    "point_id": "str",
    "participant": "str",
    "kind": "str",
    "node": "str",
    "device_id": "str",
    "serial": "str",
    "connectivity": "str",
    "vpn_id": "str",
    "public_ip": "str",
    "public_port": "int",
    "private_ip": "str",
    "private_port": "int",
    "valid_from": "date",
    "valid_to": "date",
}
KINDS = ("consumption", "generation")
CONNECTIVITY = ("public_ip", "vpn_direct", "vpn_provider_single", "vpn_provider_shared")
VPN_KINDS = CONNECTIVITY[1:]
_FOREVER = date(9999, 12, 31)
FIRST_LINE = 2  # registry row 0 is CSV line 2 (the header is line 1)
PATH_SAFE_COLUMNS = ("point_id", "participant")


def load_registry(input_dir: Path) -> pl.DataFrame:
    """Typed registry rows; `valid_to` null means still active."""
    return read_table(input_dir, "metering_points", REGISTRY_SCHEMA)


def active_in(registry: pl.DataFrame, first_day: pl.Expr | object, last_day: pl.Expr | object) -> pl.DataFrame:
    """Rows whose validity [valid_from, valid_to] overlaps the inclusive day range."""
    return registry.filter(
        (pl.col("valid_from") <= last_day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") >= first_day))
    )


def _overlaps(registry: pl.DataFrame, keys: list[str], label: pl.Expr) -> pl.Series:
    """Per row: `label` when another row with the same non-null keys is valid on a common day, else null.
    (The GX report names each such row by its `line` and `point_id`, so both rows of a clash show.)"""
    rows = registry.with_row_index("_i").with_columns(_to=pl.col("valid_to").fill_null(_FOREVER))
    rows = rows.filter(pl.all_horizontal(pl.col(k).is_not_null() for k in keys) & pl.col("valid_from").is_not_null())
    pairs = rows.join(rows.select(*keys, "_i", "valid_from", "_to"), on=keys, suffix="_o").filter(
        (pl.col("_i") != pl.col("_i_o"))
        & (pl.col("valid_from") <= pl.col("_to_o"))
        & (pl.col("valid_from_o") <= pl.col("_to"))
    )
    clashing = pairs.group_by("_i").agg(label.first().alias("_label"))
    return registry.with_row_index("_i").join(clashing, on="_i", how="left", maintain_order="left")["_label"]


def _address_problem(value: str | None, *, must_be_private: bool) -> str | None:
    if value is None:
        return "missing"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"{value} is not an IP address"
    if address.is_private != must_be_private:
        return f"{value} is {'public' if must_be_private else 'private'}"
    return None


def _name_problem(value: str | None, column: str) -> str | None:
    """Why `value` could act as a path (or escape one), else None. Control characters are shown as
    `?` with their code point, so the message itself stays printable."""
    if value is None:
        return None
    controls = [ch for ch in value if ord(ch) < 32 or ord(ch) == 127]
    shown = "".join("?" if ch in controls else ch for ch in value)
    if value in (".", ".."):
        return f"{column} '{shown}' is a path step"
    if "/" in value or "\\" in value:
        return f"{column} '{shown}' contains a path separator"
    if controls:
        return f"{column} '{shown}' contains a control character (U+{ord(controls[0]):04X})"
    return None


def check_frame(registry: pl.DataFrame, first_line: int = FIRST_LINE) -> pl.DataFrame:
    """The registry plus `line` (as in the CSV) and one `_check` column per rule GX cannot express: null
    when the row passes, else what is wrong (so the GX report shows the offending point, device or
    address and its line, not a bare False).

    These rules compare rows with each other or need `ipaddress`, which GX cannot express; the suite
    `expectations/metering_points.json` then asserts each column is null."""
    public = pl.col("connectivity") == "public_ip"
    # `ipaddress` per row: the registry holds hundreds or thousands of rows, a Python pass is negligible
    pub = [
        _address_problem(ip, must_be_private=False) if conn == "public_ip" else None
        for ip, conn in zip(registry["public_ip"].to_list(), registry["connectivity"].to_list())
    ]
    priv = [
        _address_problem(ip, must_be_private=True) if conn == "public_ip" or ip is not None else None
        for ip, conn in zip(registry["private_ip"].to_list(), registry["connectivity"].to_list())
    ]
    lines = pl.int_range(pl.len(), dtype=pl.Int64) + first_line
    unsafe = {
        f"_{column}_unsafe": pl.Series(
            [
                f"line {i + first_line}: {problem}" if (problem := _name_problem(value, column)) else None
                for i, value in enumerate(registry[column].to_list())
            ],
            dtype=pl.String,
        )
        for column in PATH_SAFE_COLUMNS
    }
    return registry.with_columns(
        line=lines,
        **unsafe,
        _point_overlap=_overlaps(registry, ["point_id"], pl.col("point_id")),
        _device_overlap=_overlaps(registry, ["device_id"], pl.col("device_id")),
        _device_serial_overlap=_overlaps(registry, ["device_id", "serial"], pl.format("{}/{}", "device_id", "serial")),
        _endpoint_overlap=_overlaps(
            registry.with_columns(pl.when(public).then(pl.col("public_ip")).alias("public_ip")),
            ["public_ip", "public_port"],
            pl.format("{}:{}", "public_ip", "public_port"),
        ),
        _public_ip_problem=pl.Series(pub, dtype=pl.String),
        _private_ip_problem=pl.Series(priv, dtype=pl.String),
        _public_port_missing=pl.when(public & pl.col("public_port").is_null()).then(pl.col("point_id")),
        _vpn_id_missing=pl.when(pl.col("connectivity").is_in(VPN_KINDS) & pl.col("vpn_id").is_null()).then(
            pl.col("point_id")
        ),
        _validity_reversed=pl.when(pl.col("valid_to") < pl.col("valid_from")).then(
            pl.format("{} {}..{}", "point_id", "valid_from", "valid_to")
        ),
    )


def has_problems(registry: pl.DataFrame) -> bool:
    """True when any cross-row rule of `check_frame` fails (cheap: no GX)."""
    checks = check_frame(registry)
    return bool(
        checks.select(
            pl.any_horizontal(pl.col(c).is_not_null() for c in checks.columns if c.startswith("_")).any()
        ).item()
    )


def validate(registry: pl.DataFrame, source: str = "metering_points") -> list:
    """Run the GX suite `metering_points` on the registry (a few hundred or thousand rows: cheap)."""
    from pipelines.quality import run_suite

    return run_suite("metering_points", source, check_frame(registry), id_columns=["line", "point_id"])


# --- the registry as the ingest of one month sees it ---------------------------------------------


def month_points(registry: pl.DataFrame, month: Month) -> pl.DataFrame:
    """One row per point active in the month: point_idx (grouped by participant, so a participant's
    readings are contiguous once sorted by point), point_id, participant, kind, active_days.

    A point's participant and kind are taken from its latest row active in the month."""
    first, last = month.first_day, month.last_day
    rows = active_in(registry, first, last)
    days = _active_days(rows, first, last)
    latest = rows.sort("valid_from").group_by("point_id", maintain_order=True).last()
    points = (
        latest.select("point_id", "participant", "kind", "node")
        .join(days.group_by("point_id").agg(active_days=pl.col("day").n_unique()), on="point_id")
        .sort("participant", "point_id")
        .with_row_index("point_idx")
        .with_columns(pl.col("point_idx").cast(pl.Int64))
    )
    return points


def _active_days(rows: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """(point_id, device_id, day) with day = 0-based day of the month, for each active day of each row."""
    return (
        rows.select(
            "point_id",
            "device_id",
            pl.max_horizontal(pl.col("valid_from"), pl.lit(first)).alias("_from"),
            pl.min_horizontal(pl.col("valid_to").fill_null(last), pl.lit(last)).alias("_to"),
        )
        .filter(pl.col("_from") <= pl.col("_to"))
        .select("point_id", "device_id", pl.date_ranges("_from", "_to").alias("day"))
        .explode("day")
        .with_columns(day=(pl.col("day") - pl.lit(first)).dt.total_days().cast(pl.Int32))
    )


def device_days(registry: pl.DataFrame, month: Month, points: pl.DataFrame) -> pl.DataFrame:
    """(device_id, day, point_idx): which point a device's readings belong to on each day of the month
    (day = 0-based day of the interval's start). Unique per (device_id, day) once the registry passed
    its checks (no device on two rows at the same time)."""
    first, last = month.first_day, month.last_day
    rows = active_in(registry, first, last)
    return (
        _active_days(rows, first, last)
        .join(points.select("point_id", "point_idx"), on="point_id")
        .select("device_id", "day", "point_idx")
        .unique(["device_id", "day"], keep="first")
    )


def point_day_ranges(registry: pl.DataFrame, month: Month, points: pl.DataFrame) -> pl.DataFrame:
    """(point_idx, first_i, last_i): each maximal run of active days of a point as a range of interval
    indexes (interval i of the month ends at month start + 15 min * i; day d holds i = 96d+1 .. 96d+96)."""
    first, last = month.first_day, month.last_day
    days = (
        _active_days(active_in(registry, first, last), first, last)
        .join(points.select("point_id", "point_idx"), on="point_id")
        .select("point_idx", "day")
        .unique()
        .sort("point_idx", "day")
    )
    runs = days.with_columns(
        _run=((pl.col("day") - pl.col("day").shift(1) != 1) | (pl.col("point_idx") != pl.col("point_idx").shift(1)))
        .fill_null(True)
        .cum_sum()
    )
    return (
        runs.group_by("_run", maintain_order=True)
        .agg(
            pl.col("point_idx").first(),
            first_i=pl.col("day").min().cast(pl.Int64) * INTERVALS_PER_DAY + 1,
            last_i=pl.col("day").max().cast(pl.Int64) * INTERVALS_PER_DAY + INTERVALS_PER_DAY,
        )
        .drop("_run")
    )
