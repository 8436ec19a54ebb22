"""The delivery check's input files (contract: ../shared/contracts/metering.md): their schemas, and
what the run makes of them. They are read by `pipelines.inputs.read_rows` so that nothing is lost:
every row keeps its line number and raw text, and a value that does not parse is not a silent null
but a `_reason` that the rules and the report quote back."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.inputs import Schema, Source, read_rows, read_table

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


def read_changes(input_dir: Path) -> Source:
    return read_rows(input_dir, "vpn_changes", VPN_CHANGES_SCHEMA)


def read_deliveries(input_dir: Path) -> Source:
    return read_rows(input_dir, "directamm_deliveries", DELIVERIES_SCHEMA, not_blank=tuple(DELIVERIES_SCHEMA))


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
