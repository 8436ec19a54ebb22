"""Reading the files users hand us: CSV with a header or Parquet with the same stem, typed strictly.
Every pipeline reads its input tables here (metering's readings scan aside: see metering/readings.py).

A value that does not parse is never turned into a silent null. Two policies, one reading path
(`_open`: find the file, check its shape and columns, read it as written):
- `read_table` fails: it raises an InputError naming the file, the column and example lines;
- `read_rows` quarantines: it keeps every row with its line, its text as written and the reason a bad
  one failed (`Source`), for the pipelines that report bad rows instead of stopping (delivery).
Line numbers are the lines a person finds in the file (`first_line`). A number must be finite: `NaN`,
`inf`, `Infinity` parse as floats but are no price or energy, so they are bad values.

The shape of a CSV is checked before its values, each with one message a person can act on: an
empty file, a semicolon-separated export (decimal commas), a line with the wrong number of fields
(named by line), a missing input directory."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from pipelines.errors import InputError

logger = logging.getLogger(__name__)

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


def first_line(path: Path) -> int:
    """The line number of a file's first data row, as a person sees it, for every reader: CSV 2 (the
    header is line 1), Parquet 1 (the first row)."""
    return 2 if Path(path).suffix == ".csv" else 1


def find_input(input_dir: Path, stem: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        candidate = Path(input_dir) / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def check_dir(input_dir: Path) -> None:
    """Raise the InputError for an input directory that is not there (rather than "missing file")."""
    input_dir = Path(input_dir)
    if not input_dir.exists():
        raise InputError(f"input directory {input_dir} does not exist")
    if not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} is not a directory")


def missing_file(input_dir: Path, stem: str) -> InputError:
    """The error for a required input that is not there: its directory, or the file."""
    try:
        check_dir(input_dir)
    except InputError as exc:
        return exc
    return InputError(f"missing input file {stem}.csv (or {stem}.parquet) in {input_dir}")


def check_csv_shape(path: Path) -> None:
    """Raise an InputError when a CSV's first line shows it cannot be what the contract asks for:
    empty, or separated by semicolons (a Spanish-language Excel export: `;` between fields and a
    decimal comma), which would otherwise surface as every column "missing"."""
    if path.suffix != ".csv":
        return
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    if not first.strip():
        raise InputError(f"{path.name} is empty (no header line)")
    header = first.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if header.count(";") > header.count(","):
        raise InputError(
            f"{path.name} looks semicolon-separated (header {header[:120]!r}), as a Spanish-language Excel "
            "export is; the contract wants comma-separated values with decimal points (61.97, not 61,97): "
            "save it as CSV with ',' between fields and '.' as the decimal separator"
        )


def _numbered_lines(path: Path) -> pl.LazyFrame:
    """Each physical line of a file as text (`_l`) with its 1-based number (`line`): split on a control
    character no contract value holds (U+001F), no quoting, so a broken line is seen as it is."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        schema={"_l": pl.String},
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
    ).with_row_index("line", offset=1)


def ragged_lines(path: Path, limit: int = 5) -> str | None:
    """A message naming the lines whose number of fields differs from the header's, or None.

    One native pass over the file's lines (commas inside double quotes do not count)."""
    text = pl.col("_l").str.strip_chars_end("\r")
    fields = text.str.replace_all(r'"[^"]*"', "").str.count_matches(",", literal=True) + 1
    lines = _numbered_lines(path).select("line", fields=fields, blank=text.fill_null("").str.strip_chars() == "")
    header = lines.head(1).collect()
    if header.height == 0:
        return None
    expected = int(header["fields"][0])
    bad = lines.filter((pl.col("line") > 1) & ((pl.col("fields") != expected) | pl.col("blank"))).collect()
    if bad.height == 0:
        return None
    examples = ", ".join(
        f"line {line} is blank" if blank else f"line {line} has {found}"
        for line, found, blank in bad.head(limit).iter_rows()
    )
    more = f" (and {bad.height - limit} more)" if bad.height > limit else ""
    if bad.height == 1:
        unit = "" if bad["blank"][0] else " fields"
        return f"{path.name}: {examples}{unit}; every line must have the header's {expected} fields"
    return f"{path.name}: {bad.height} line(s) do not have the header's {expected} fields: {examples}{more}"


def scan_file(path: Path) -> pl.LazyFrame:
    """Raw rows; CSV columns all as text so that nothing is coerced before we can report it."""
    if path.suffix == ".parquet":
        return pl.scan_parquet(path)
    return pl.scan_csv(path, infer_schema=False, raise_if_empty=False)


def _text(column: str) -> pl.Expr:
    """The raw value as trimmed text, blank as null (a blank cell is missing, not malformed)."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def _finite(value: pl.Expr) -> pl.Expr:
    """The number, or null when it is NaN or infinite (no price or energy is)."""
    return pl.when(value.is_finite()).then(value)


def _parse(column: str, kind: Kind, source: pl.DataType) -> pl.Expr:
    target = _DTYPES[kind]
    col = pl.col(column)
    if source == target and kind != "month":
        return _finite(col) if kind == "float" else col
    text = _text(column)
    if kind == "str":
        return text
    if kind == "float":
        return _finite(text.cast(pl.Float64, strict=False))
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


def _fast(column: str, kind: Kind, source: pl.DataType) -> pl.Expr:
    """The common case, clean values: parse without trimming (several times faster)."""
    col = pl.col(column)
    if source == _DTYPES[kind] and kind != "month":
        return _finite(col) if kind == "float" else col
    if source != pl.String or kind == "month":
        return _parse(column, kind, source)
    if kind == "str":
        return col
    if kind == "float":
        return _finite(col.cast(pl.Float64, strict=False))
    if kind == "int":
        return col.cast(pl.Int64, strict=False)
    if kind == "date":
        return col.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    parsed = col.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M", strict=False)
    return pl.when(parsed.dt.minute() == 0).then(parsed) if kind == "hour" else parsed


@dataclass(frozen=True)
class Source:
    """An input read by `read_rows`, every row kept: the typed columns (null where a value did not
    parse), `_raw_<col>` (the value as written, trimmed), `_line` (the line a person finds it on: CSV
    header = 1, Parquet rows from 1) and `_reason` ("" for a good row, else what is wrong with it)."""

    path: Path
    rows: pl.DataFrame

    @property
    def label(self) -> str:
        return self.path.name

    def good(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("_reason") == "")

    def bad(self) -> pl.DataFrame:
        return self.rows.filter(pl.col("_reason") != "")


def stray_quotes(path: Path) -> str | None:
    """A message naming the first line with an unmatched double quote (an odd number of `"`), or None.

    Only asked once the file could not be read: a quote left open swallows the rest of the file into one
    field, and the reader's own error names no line."""
    lines = (
        _numbered_lines(path)
        .filter(pl.col("_l").fill_null("").str.count_matches('"', literal=True) % 2 == 1)
        .head(1)
        .collect()
    )
    if lines.height == 0:
        return None
    return (
        f'{path.name}: line {lines["line"][0]} has an unmatched double quote ("): a quoted field must end '
        "with a closing quote; remove the stray quote, or close it"
    )


def _unreadable(path: Path, exc: Exception) -> InputError:
    """An unreadable file: the ragged line or the stray quote that explains it when there is one, else
    the library's reason."""
    found = (ragged_lines(path) or stray_quotes(path)) if path.suffix == ".csv" else None
    return InputError(found or f"{path.name}: cannot be read ({str(exc).splitlines()[0]})")


def _open(input_dir: Path, stem: str, schema: Schema, *, required: bool) -> tuple[Path, pl.DataFrame, pl.Schema] | None:
    """(the file, its `schema` columns as written, the file's own schema), or None for an absent file
    that is not `required`. Raises the InputError a person can act on for a missing file or directory,
    an empty or semicolon-separated CSV, a missing column, a ragged line, an unreadable file."""
    path = find_input(input_dir, stem)
    if path is None:
        if not required:
            logger.debug("no %s.csv or %s.parquet in %s", stem, stem, input_dir)  # the caller says what that means
            return None
        raise missing_file(input_dir, stem)
    logger.debug("reading %s", path)
    check_csv_shape(path)
    try:
        lf = scan_file(path)
        source_schema = lf.collect_schema()
        missing = [c for c in schema if c not in source_schema]
        if missing:
            raise InputError(
                f"{path.name}: missing column(s) {', '.join(missing)}; found {', '.join(source_schema.names())}"
            )
        raw = lf.select(list(schema)).collect()
    except InputError:
        raise
    except Exception as exc:  # unreadable file: name it, keep the library's reason
        raise _unreadable(path, exc) from exc
    if path.suffix == ".csv" and raw.null_count().sum_horizontal().item():
        # a short line reads as nulls at its end (a date "that did not happen"): name the line instead
        # (only looked for when there are nulls)
        ragged = ragged_lines(path)
        if ragged:
            raise InputError(ragged)
    return path, raw, source_schema


def read_table(input_dir: Path, stem: str, schema: Schema, *, required: bool = True) -> pl.DataFrame | None:
    """Read `<stem>.csv|.parquet` strictly typed; raise InputError on anything that does not parse."""
    started = time.perf_counter()
    opened = _open(input_dir, stem, schema, required=required)
    if opened is None:
        return None
    path, raw, source_schema = opened
    typed = raw.select(_fast(c, k, source_schema[c]).alias(c) for c, k in schema.items())
    lost = raw.select((pl.col(c).is_not_null() & typed[c].is_null()).sum() for c in schema).row(0)
    if any(lost):
        # some values need trimming, or are malformed: the careful parse tells which, by line
        logger.debug("%s: %d value(s) not clean, parsing carefully", path.name, sum(lost))
        careful = parse_columns(
            raw.lazy()
            .with_row_index("_line", offset=first_line(path))
            .with_columns(**{f"_raw_{c}": pl.col(c) for c in schema}),
            schema,
            source_schema,
        ).collect()
        bad = careful.filter(pl.col("_reason") != "")
        if bad.height:
            raise InputError(_describe_bad_rows(path, bad, schema))
        typed = careful.select(list(schema))
    logger.info("read %s: %d rows in %.2f s", path, typed.height, time.perf_counter() - started)
    return typed


def read_rows(input_dir: Path, stem: str, schema: Schema, *, not_blank: tuple[str, ...] = ()) -> Source:
    """Read the required `<stem>.csv|.parquet` keeping every row: a value that does not parse, or a
    blank in a `not_blank` column, is the row's `_reason` (see Source), not an error. A file that cannot
    be read as a table at all (missing, a missing column, a ragged line...) still raises InputError."""
    started = time.perf_counter()
    opened = _open(input_dir, stem, schema, required=True)
    assert opened is not None  # required: a missing file raised
    path, raw, source_schema = opened
    lf = (
        raw.lazy()
        .with_row_index("_line", offset=first_line(path))
        .with_columns(**{f"_raw_{c}": pl.col(c).cast(pl.String).str.strip_chars() for c in schema})
    )
    try:
        rows = parse_columns(lf, schema, source_schema).collect()
    except Exception as exc:  # a column polars cannot take as text: the file is unreadable, not a bad row
        raise _unreadable(path, exc) from exc
    blank = [
        pl.when(pl.col(f"_raw_{c}").is_null() | (pl.col(f"_raw_{c}") == "")).then(pl.lit(f"missing {c}"))
        for c in not_blank
    ]
    rows = rows.with_columns(
        pl.concat_str([pl.col("_reason").replace("", None), *blank], separator="; ", ignore_nulls=True)
        .fill_null("")
        .alias("_reason"),
        pl.col("_line").cast(pl.Int64),
    )
    source = Source(path, rows)
    bad = source.bad()
    logger.info(
        "read %s: %d rows in %.2f s, %d quarantined%s",
        path,
        rows.height,
        time.perf_counter() - started,
        bad.height,
        f" (first: line {bad['_line'][0]}, {bad['_reason'][0]})" if bad.height else "",
    )
    return source


def _describe_bad_rows(path: Path, bad: pl.DataFrame, schema: Schema) -> str:
    lines = [f"{path.name}: {bad.height} row(s) with values that do not parse"]
    for column, kind in schema.items():
        failing = bad.filter(pl.col("_reason").str.contains(f"unparsable {column} ", literal=True))
        if failing.height:
            examples = ", ".join(
                f"line {row['_line']}: {row[f'_raw_{column}']!r}" for row in failing.head(5).iter_rows(named=True)
            )
            expected = {
                "hour": "YYYY-MM-DD HH:00",
                "minute": "YYYY-MM-DD HH:MM",
                "date": "YYYY-MM-DD",
                "month": "YYYY-MM",
                "float": "a finite number",
                "int": "a whole number",
            }.get(kind, kind)
            lines.append(f"  column {column} (expected {expected}): {failing.height} bad, e.g. {examples}")
    return "\n".join(lines)
