"""The delivery check's input files (contract: ../shared/contracts/metering.md), read so that nothing
is lost: every row keeps its CSV line number and raw text, and a value that does not parse is not a
silent null but a `_reason` that the rules and the report quote back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.errors import InputError
from pipelines.inputs import (
    Schema,
    check_csv_shape,
    find_input,
    first_line,
    missing_file,
    parse_columns,
    ragged_lines,
    read_table,
    scan_file,
)

VPN_CHANGES_SCHEMA: Schema = {
    "change_id": "str",
    "participant": "str",
    "vpn_id": "str",
    "letter_date": "date",
    "proposed_date": "date",
    "medicion_approved_on": "date",
    "tecnologia_approved_on": "date",
    "executed_on": "date",
    "notified_on": "date",
}
DELIVERIES_SCHEMA: Schema = {"participant": "str", "point_id": "str", "supply_month": "month", "received_at": "minute"}
DISPATCH_SCHEMA: Schema = {"point_id": "str", "hour": "hour", "kwh": "float"}


@dataclass(frozen=True)
class Source:
    """A read input: typed columns, `_raw_<col>` text, `_line` (CSV line, header = 1), `_reason`."""

    path: Path
    rows: pl.DataFrame

    @property
    def label(self) -> str:
        return self.path.name

    def good(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("_reason") == "")

    def bad(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("_reason") != "")


def read_source(input_dir: Path, stem: str, schema: Schema, required: tuple[str, ...] = ()) -> Source:
    """Every row kept; `_reason` says what did not parse or which `required` value is blank."""
    path = find_input(input_dir, stem)
    if path is None:
        raise missing_file(input_dir, stem)
    check_csv_shape(path)
    try:
        lf = scan_file(path)
        source_schema = lf.collect_schema()
    except Exception as exc:  # unreadable file: name it, keep the library's reason
        raise InputError(f"{path.name}: cannot be read ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in schema if c not in source_schema]
    if missing:
        raise InputError(
            f"{path.name}: missing column(s) {', '.join(missing)}; found {', '.join(source_schema.names())}"
        )
    lf = lf.select(list(schema)).with_row_index("_line", offset=first_line(path))  # Parquet from 1, as inputs.py
    lf = lf.with_columns(**{f"_raw_{c}": pl.col(c).cast(pl.String).str.strip_chars() for c in schema})
    try:
        rows = parse_columns(lf, schema, source_schema).collect()
    except Exception as exc:
        ragged = ragged_lines(path) if path.suffix == ".csv" else None
        raise InputError(ragged or f"{path.name}: cannot be read ({str(exc).splitlines()[0]})") from exc
    if (
        path.suffix == ".csv"
        and rows.select(pl.any_horizontal(pl.col(f"_raw_{c}").is_null() for c in schema).any()).item()
    ):
        # a short line reads as blanks at its end (a date "that did not happen"): name the line instead
        ragged = ragged_lines(path)
        if ragged:
            raise InputError(ragged)
    blank = [
        pl.when(pl.col(f"_raw_{c}").is_null() | (pl.col(f"_raw_{c}") == "")).then(pl.lit(f"missing {c}"))
        for c in required
    ]
    rows = rows.with_columns(
        pl.concat_str([pl.col("_reason").replace("", None), *blank], separator="; ", ignore_nulls=True)
        .fill_null("")
        .alias("_reason"),
        pl.col("_line").cast(pl.Int64),
    )
    return Source(path, rows)


def read_changes(input_dir: Path) -> Source:
    return read_source(input_dir, "vpn_changes", VPN_CHANGES_SCHEMA)


def read_deliveries(input_dir: Path) -> Source:
    return read_source(input_dir, "directamm_deliveries", DELIVERIES_SCHEMA, required=tuple(DELIVERIES_SCHEMA))


def read_dispatch(input_dir: Path) -> pl.DataFrame | None:
    """Optional; strict, because estimating generation from a half-read file would invent numbers."""
    return read_table(input_dir, "dispatch_records", DISPATCH_SCHEMA, required=False)


def parse_errors() -> pl.Expr:
    """Per row: what did not parse, else null (what the GX suite checks)."""
    return pl.when(pl.col("_reason") != "").then(pl.col("_reason")).alias("parse_error")


def check_frame(source: Source) -> pl.DataFrame:
    """What the GX suites see: `line` (to name offending rows), the typed columns, `parse_error`."""
    typed = [c for c in source.rows.columns if not c.startswith("_")]
    return source.rows.select(pl.col("_line").alias("line"), *typed, parse_errors())


def quarantine(source: Source) -> pl.DataFrame:
    """Rows that did not parse, as they were written, with the reason (kept, never counted)."""
    raw = [c for c in source.rows.columns if c.startswith("_raw_")]
    return source.bad().select(
        pl.lit(source.label).alias("source"),
        pl.col("_line").alias("line"),
        pl.col("_reason").alias("reason"),
        pl.concat_str([pl.col(c).fill_null("") for c in raw], separator=",").alias("row"),
    )
