"""Reading the files users hand us: CSV with a header or Parquet with the same stem, typed strictly.

A value that does not parse is never turned into a silent null: `read_table` raises an InputError
naming the file, the column and example lines; `parse_columns` (for pipelines that quarantine
instead of failing) returns the typed rows with the reason each bad one failed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from pipelines.errors import InputError

Kind = Literal["str", "float", "int", "hour", "minute", "date", "month"]
Schema = dict[str, Kind]

_DTYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "float": pl.Float64(),
    "int": pl.Int64(),
    "hour": pl.Datetime("us"),
    "minute": pl.Datetime("us"),
    "date": pl.Date(),
    "month": pl.String(),
}


def find_input(input_dir: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        candidate = Path(input_dir) / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def scan_file(path: Path) -> pl.LazyFrame:
    """Raw rows; CSV columns all as text so that nothing is coerced before we can report it."""
    if path.suffix == ".parquet":
        return pl.scan_parquet(path)
    return pl.scan_csv(path, infer_schema=False, raise_if_empty=False)


def _text(column: str) -> pl.Expr:
    """The raw value as trimmed text, blank as null (a blank cell is missing, not malformed)."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _parse(column: str, kind: Kind, source: pl.DataType) -> pl.Expr:
    target = _DTYPES[kind]
    col = pl.col(column)
    if source == target and kind != "month":
        return col
    text = _text(column)
    if kind == "str":
        return text
    if kind == "float":
        return text.cast(pl.Float64, strict=False)
    if kind == "int":
        return text.cast(pl.Int64, strict=False)
    if kind == "date":
        return text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if kind == "month":
        return pl.when(text.str.contains(r"^\d{4}-(0[1-9]|1[0-2])$")).then(text)
    if source in (pl.Datetime("us"), pl.Datetime("ns"), pl.Datetime("ms")):
        parsed = col.cast(pl.Datetime("us"))
    else:
        parsed = text.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M", strict=False)
    if kind == "hour":
        # programming hours are labelled by their start: anything off the hour is malformed
        parsed = pl.when(parsed.dt.truncate("1h") == parsed).then(parsed)
    return parsed


def parse_columns(lf: pl.LazyFrame, schema: Schema, source_schema: pl.Schema) -> pl.LazyFrame:
    """Typed columns plus `_reason`: null for a good row, else which column failed to parse and why."""
    typed = {c: _parse(c, k, source_schema[c]) for c, k in schema.items()}
    reasons = [
        pl.when(_text(c).is_not_null() & expr.is_null()).then(pl.lit(f"unparsable {c} ({schema[c]})"))
        for c, expr in typed.items()
    ]
    return lf.with_columns(
        pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("_reason"),
        *[expr.alias(c) for c, expr in typed.items()],
    )


def read_table(input_dir: Path, stem: str, schema: Schema, *, required: bool = True) -> pl.DataFrame | None:
    """Read `<stem>.csv|.parquet` strictly typed; raise InputError on anything that does not parse."""
    path = find_input(input_dir, stem)
    if path is None:
        if not required:
            return None
        raise InputError(f"missing input file {stem}.csv (or {stem}.parquet) in {input_dir}")
    try:
        lf = scan_file(path)
        source_schema = lf.collect_schema()
    except Exception as exc:  # unreadable file: name it, keep the library's reason
        raise InputError(f"{path.name}: cannot be read ({exc})") from exc
    missing = [c for c in schema if c not in source_schema]
    if missing:
        raise InputError(
            f"{path.name}: missing column(s) {', '.join(missing)}; found {', '.join(source_schema.names())}"
        )
    # line numbers as a person sees them in the CSV: the header is line 1
    offset = 2 if path.suffix == ".csv" else 0
    lf = lf.select(list(schema)).with_row_index("_line", offset=offset)
    raw_cols = {c: pl.col(c).alias(f"_raw_{c}") for c in schema}
    try:
        frame = parse_columns(lf.with_columns(**{f"_raw_{c}": e for c, e in raw_cols.items()}), schema, source_schema).collect()
    except Exception as exc:
        raise InputError(f"{path.name}: cannot be read ({exc})") from exc
    bad = frame.filter(pl.col("_reason") != "")
    if bad.height:
        raise InputError(_describe_bad_rows(path, bad, schema))
    return frame.select(list(schema))


def _describe_bad_rows(path: Path, bad: pl.DataFrame, schema: Schema) -> str:
    lines = [f"{path.name}: {bad.height} row(s) with values that do not parse"]
    for column, kind in schema.items():
        failing = bad.filter(pl.col("_reason").str.contains(f"unparsable {column} ", literal=True))
        if failing.height:
            examples = ", ".join(
                f"line {row['_line']}: {row[f'_raw_{column}']!r}" for row in failing.head(5).iter_rows(named=True)
            )
            expected = {"hour": "YYYY-MM-DD HH:00", "minute": "YYYY-MM-DD HH:MM", "date": "YYYY-MM-DD",
                        "month": "YYYY-MM", "float": "a number", "int": "a whole number"}.get(kind, kind)
            lines.append(f"  column {column} (expected {expected}): {failing.height} bad, e.g. {examples}")
    return "\n".join(lines)
