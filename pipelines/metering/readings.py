"""Reading the 15-minute readings files (`readings/**.csv|parquet`) in one streaming pass.

Every row read ends in exactly one category, written to staged Parquet files together with what the
later steps need (`CATEGORY`; good rows in narrow files of their own, the others with their raw text):
  good        in the month, typed, mapped to its metering point: kept as the sort key `k` and value `v`
  quarantine  in the month but unusable (unknown or unregistered device, off-grid or unparsable
              timestamp, unknown channel, value not a number): raw values and the reason are kept
  other_month a valid timestamp of another month: not this run's business (counted, not kept)
  unplaced    the timestamp does not parse, or lies outside the accepted range (before the floor
              `earliest_interval_end` of config/vee.toml, or after the time of the run), so it has no
              month of its own: quarantined in the month of its file's earliest valid interval
  blank       an empty line (not a row)

Timestamps: the contract's `YYYY-MM-DD HH:MM` (local Guatemala time). A file written with `:00`
seconds or a `T` separator means the same local time unambiguously and is read as such. A file whose
timestamps carry a zone (`Z`, `-06:00`), or in which no timestamp parses at all, is reported as one
unreadable FILE with the format found and the one expected (not as thousands of identical rows).
Which case a file is is told from its first lines (`_sniff`), so the fast path stays a plain parse.

Speed: the common case (CSV files whose header is exactly the contract's columns) is one multi-file
polars scan, all columns as text, parsed with explicit formats. Anything else (other column order,
BOM, Parquet, a ragged line that makes the fast scan fail) goes through a per-file path that is slower
but tolerant, so one odd file never costs the speed of all the others, and never stops them.

This module deliberately does NOT use pipelines.inputs (the one reader of ncc11, delivery and the
registers): it is the measured fast path for tens of millions of rows (one multi-file scan that
stages integer keys, see bench/meters_bench.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

import polars as pl

from pipelines.errors import EnvironmentFault, environment_fault
from pipelines.metering import keys
from pipelines.metering.keys import CHANNELS, DAY_US, INTERVAL_US
from pipelines.metering.landing import (
    COLUMNS,
    DEFAULT_FLOOR,
    SNIFF_LINES,
    TS_FORMAT,
    CsvHead,
    csv_head,
    excerpt,
    header,
    sniff,
)
from pipelines.periods import GUATEMALA, Month

CATEGORY = {"good": 0, "quarantine": 1, "other_month": 2, "unplaced": 3, "blank": 4}
EXPECTED_TS = "local Guatemala time as YYYY-MM-DD HH:MM, with no zone or offset"


STAGED_SCHEMA = {
    "cat": pl.UInt8,
    "file": pl.UInt32,
    "row": pl.UInt32,
    "k": pl.Int64,
    "v": pl.Float64,
    "rel": pl.Int16,
    **{f"raw_{c}": pl.String for c in COLUMNS},
    "flags": pl.UInt16,
    "shape": pl.String,
}
# A good row's raw text, flags and shape are null: its rows are staged without them, in files of their own
# (`good-*.parquet`), and put back in STAGED_SCHEMA when read. Writing five all-null text columns for the
# 24 M good rows of a month was a CPU-second of its read step.
GOOD_COLUMNS = ("file", "row", "k", "v", "rel")
_GOOD_PREFIX = "good-"
_GOOD_AS_STAGED = [
    pl.col(c) if c in GOOD_COLUMNS else pl.lit(CATEGORY["good"] if c == "cat" else None, t).alias(c)
    for c, t in STAGED_SCHEMA.items()
]


def _staged_files(folders: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the good rows' files, the other rows' files) staged in `folders`."""
    found = sorted(p for d in folders for p in d.glob("*.parquet"))
    return [p for p in found if p.name.startswith(_GOOD_PREFIX)], [
        p for p in found if not p.name.startswith(_GOOD_PREFIX)
    ]


@dataclass
class Staged:
    """What the streaming pass produced for one month: staged Parquet files, and the run's list of
    input files (the `file` column is an index into it)."""

    directory: Path
    files: list[Path]  # index = the `file` column
    indexes: list[int] = field(default_factory=list)  # the files staged for this month
    fast_files: set[int] = field(default_factory=set)  # read by the multi-file scan (global row index)
    unreadable: dict[int, str] = field(default_factory=dict)  # file index -> why it could not be read
    excluded: set[int] = field(default_factory=set)  # files that changed while read: their rows are left out
    more: list[Path] = field(default_factory=list)  # further folders of the month (a file found to hold it later)

    def scan(self) -> pl.LazyFrame:
        """Every staged row (STAGED_SCHEMA): the good rows' narrow files and the others' wide ones."""
        good, rest = _staged_files([self.directory, *self.more])
        parts = ([pl.scan_parquet(good).select(_GOOD_AS_STAGED)] if good else []) + (
            [pl.scan_parquet(rest)] if rest else []
        )
        if not parts:  # every file unreadable
            return pl.LazyFrame(schema=STAGED_SCHEMA)
        lf = pl.concat(parts) if len(parts) > 1 else parts[0]
        return lf.filter(~pl.col("file").is_in(sorted(self.excluded))) if self.excluded else lf

    def merge(self, other: Staged) -> None:
        self.more += [other.directory, *other.more]
        self.indexes += other.indexes
        self.fast_files |= other.fast_files
        self.unreadable.update(other.unreadable)


def _text(expr: pl.Expr) -> pl.Expr:
    text = expr.str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text)


def first_months(
    files: list[Path], indexes: list[int], floor: datetime, now: datetime, heads: dict[int, CsvHead] | None = None
) -> dict[int, Month | None]:
    """The month of each file's earliest interval between `floor` and `now`, read from the whole file
    (its interval_end column only), None when no row of it has one (or it cannot be read: the run reads
    it and reports it). Which run reads a file is decided by this, never by its first row."""
    ts = pl.col("ts")
    in_range = (ts >= pl.lit(floor)) & (ts <= pl.lit(now))
    found: dict[int, Month | None] = dict.fromkeys(indexes)
    plain: dict[int, CsvHead] = {}  # the contract's exact header: scanned together, a batch at a time
    for index in indexes:
        path, head = files[index], (heads or {}).get(index)
        try:
            head = head if head is not None or path.suffix == ".parquet" else csv_head(path)
        except Exception:  # noqa: BLE001 - read (and reported) by the current run
            continue
        if head is not None and head.exact and sniff(head.values)[0] == "contract":
            plain[index] = head
            continue
        found[index] = _first_month_of(path, index, head, in_range)
    # January of a backfill sees the whole year's landing folder: thousands of small files, each read
    # through. One scan per batch of files, of their distinct timestamps, costs a fifth of a scan per
    # file (600 daily files: 0.4-0.6 s against 2.9 s one at a time); a batch holding a ragged line is
    # read again one file at a time, the tolerant way
    order = list(plain)
    for start in range(0, len(order), _FIRST_MONTHS_BATCH):
        batch = order[start : start + _FIRST_MONTHS_BATCH]
        try:
            found.update(_first_months_together(files, batch, in_range))
        except Exception:  # noqa: BLE001 - a ragged line, a file gone: each file on its own decides
            found.update({i: _first_month_of(files[i], i, plain[i], in_range) for i in batch})
    return found


_FIRST_MONTHS_BATCH = 128


def _first_month_of(path: Path, index: int, head: CsvHead | None, in_range: pl.Expr) -> Month | None:
    """`first_months` of one file, read as `stage` reads it; None when it cannot be read (the run
    reads it and reports it)."""
    try:
        lf = _reader(path, index, head)
        first = None if isinstance(lf, str) else lf.select(pl.col("ts").filter(in_range).min()).collect().item()
    except Exception:  # noqa: BLE001 - read (and reported) by the current run
        return None
    return Month.of_interval_end(first) if first is not None else None


def _first_months_together(files: list[Path], indexes: list[int], in_range: pl.Expr) -> dict[int, Month | None]:
    """`first_months` of contract-header CSVs by one multi-file scan of their interval_end column."""
    paths = [files[i] for i in indexes]
    enum = pl.Enum([str(p) for p in paths])
    raw = pl.scan_csv(paths, schema={c: pl.String for c in COLUMNS}, has_header=True, include_file_paths="_path")
    # a file holds few distinct timestamps (a day's 96 in a daily file) on many rows: parsing the distinct
    # ones only is the same minimum at a fifth of the cost (600 daily files: 0.4-0.6 s against 1.9-2.6 s)
    distinct = (
        raw.select(pl.col("_path").cast(enum).to_physical().alias("k"), "interval_end")
        .unique()
        .collect(engine="streaming")
    )
    earliest = (
        distinct.lazy()
        .select("k", _parse_ts(_text(pl.col("interval_end"))).alias("ts"))
        .filter(in_range)
        .group_by("k")
        .agg(pl.col("ts").min())
        .collect()
    )
    found: dict[int, Month | None] = dict.fromkeys(indexes)
    for k, first in earliest.iter_rows():
        found[indexes[k]] = Month.of_interval_end(first)
    return found


def _reader(path: Path, index: int, head: CsvHead | None = None) -> pl.LazyFrame | str:
    """One file's rows as `stage` reads them (file, row, _shape, raw_*, device_id, ts, channel, v), or
    why it cannot be read. A CSV with the contract's exact header is read by a plain scan; a ragged line
    there makes the caller fall back to `_line_scan`."""
    if path.suffix == ".parquet":
        schema = pl.read_parquet_schema(path)
        missing = [c for c in COLUMNS if c not in schema]
        if missing:
            return f"missing column(s) {', '.join(missing)}"
        if isinstance(schema["interval_end"], pl.Datetime):
            kind, example = "contract", None
        else:
            first = pl.scan_parquet(path).select("interval_end").head(SNIFF_LINES).collect()
            kind, example = sniff(first["interval_end"].cast(pl.String).to_list())
        if kind == "zoned":
            return _zoned(example)
        return _parquet_scan(path, index, pl.Schema(schema), lenient=kind == "local")
    head = head or csv_head(path)
    if head.problem:
        return head.problem
    kind, example = sniff(head.values)
    if kind == "zoned":
        return _zoned(example)
    return _line_scan(path, index, head.names, lenient=kind == "local")


def _parse_ts(text: pl.Expr, lenient: bool = False) -> pl.Expr:
    """The contract's format; `lenient` also takes `:00` seconds and a `T` separator (same local time).
    Blanks around the value are allowed: the format's trailing space matches any run of whitespace,
    leading whitespace is skipped by the parser (stripping every value first cost twice the parse)."""
    exact = text.str.strptime(pl.Datetime("us"), TS_FORMAT + " ", strict=False)
    if not lenient:
        return exact
    spaced = text.str.replace("T", " ", literal=True)
    minutes = spaced.str.strptime(pl.Datetime("us"), TS_FORMAT, strict=False)
    seconds = spaced.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    return pl.coalesce(minutes, pl.when(seconds.dt.second() == 0).then(seconds))


def _typed_from_text(raw: dict[str, pl.Expr], lenient: bool = False) -> list[pl.Expr]:
    """device_id, channel as trimmed text (empty = missing: `_classify` tells); interval_end and value
    parsed strictly (bad -> null; a value that is not finite is made null by `_classify`).

    Every row of every file goes through these: each column is computed once, with no per-row
    `when` (an expression used twice in one `when` is computed twice: 0.9 against 0.5 CPU-s per 7 M
    values)."""
    return [
        raw["device_id"].str.strip_chars().alias("device_id"),
        _parse_ts(_text(raw["interval_end"]) if lenient else raw["interval_end"], lenient).alias("ts"),
        raw["channel"].str.strip_chars().alias("channel"),
        raw["value"].str.strip_chars().cast(pl.Float64, strict=False).alias("v"),
    ]


def _fast_scan(paths: list[Path], indexes: list[int]) -> pl.LazyFrame:
    """One multi-file scan; `file` is each path's index in the run's list of files (`indexes`)."""
    raw = pl.scan_csv(
        paths,
        schema={c: pl.String for c in COLUMNS},
        has_header=True,
        row_index_name="row",
        include_file_paths="_path",
        empty_string_is_null=False,
    )
    enum = pl.Enum([str(p) for p in paths])
    return raw.select(
        pl.lit(pl.Series(indexes, dtype=pl.UInt32)).gather(pl.col("_path").cast(enum).to_physical()).alias("file"),
        pl.col("row").cast(pl.UInt32),
        pl.lit(None, pl.String).alias("_shape"),
        *[pl.col(c).alias(f"raw_{c}") for c in COLUMNS],
        *_typed_from_text({c: pl.col(c) for c in COLUMNS}),
    )


def _line_scan(path: Path, index: int, names: list[str], lenient: bool = False) -> pl.LazyFrame:
    """Tolerant CSV path: each physical line as text, split on commas (readings values hold no commas).
    A line with the wrong number of fields is quarantined with the count, not guessed at."""
    # one column per line, split on a control character no contract value holds (U+001F); a line that
    # does hold it spills into `_rest` and is quarantined, never read cut short
    lines = (
        pl.scan_csv(
            path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"_line": pl.String, "_rest": pl.String},
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
            empty_string_is_null=True,
            missing_columns="insert",
        )
        .with_row_index("row")
        .filter(pl.col("row") > 0)
    )
    line = pl.col("_line").fill_null("")
    fields = line.str.strip_chars_end("\r").str.split(",")
    raw = {c: fields.list.get(names.index(c), null_on_oob=True).str.strip_chars().str.strip_chars('"') for c in COLUMNS}
    blank = (line.str.strip_chars() == "") & pl.col("_rest").is_null()
    return lines.select(
        pl.lit(index, pl.UInt32).alias("file"),
        (pl.col("row") - 1).cast(pl.UInt32).alias("row"),
        pl.when(pl.col("_rest").is_not_null())
        .then(pl.lit("line holds the control character U+001F"))
        .when(~blank & (fields.list.len() != len(names)))
        .then(pl.format("expected {} fields, found {}", pl.lit(len(names)), fields.list.len()))
        .alias("_shape"),
        *[pl.when(~blank).then(e).alias(f"raw_{c}") for c, e in raw.items()],
        *_typed_from_text({c: pl.when(~blank).then(e) for c, e in raw.items()}, lenient),
    )


def _parquet_scan(path: Path, index: int, schema: pl.Schema, lenient: bool = False) -> pl.LazyFrame:
    """Parquet inputs may be typed (datetime, float) or text; both are accepted."""
    lf = pl.scan_parquet(path).with_row_index("row")
    ts_type = schema["interval_end"]
    if isinstance(ts_type, pl.Datetime):
        ts = pl.col("interval_end")
        if ts_type.time_zone is not None:
            ts = ts.dt.convert_time_zone(GUATEMALA.key).dt.replace_time_zone(None)
        ts = ts.cast(pl.Datetime("us"))
    else:
        ts = _parse_ts(_text(pl.col("interval_end").cast(pl.String)), lenient)
    value = (
        pl.col("value").cast(pl.Float64)
        if schema["value"].is_numeric()
        else _text(pl.col("value").cast(pl.String)).cast(pl.Float64, strict=False)
    )
    return lf.select(
        pl.lit(index, pl.UInt32).alias("file"),
        pl.col("row").cast(pl.UInt32),
        pl.lit(None, pl.String).alias("_shape"),
        *[_raw_text(c, schema[c]).alias(f"raw_{c}") for c in COLUMNS],
        _text(pl.col("device_id").cast(pl.String)).alias("device_id"),
        ts.alias("ts"),
        _text(pl.col("channel").cast(pl.String)).alias("channel"),
        value.alias("v"),
    )


def _raw_text(column: str, dtype: pl.DataType) -> pl.Expr:
    """A typed Parquet value as a person would have written it in the CSV."""
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.strftime("%Y-%m-%d %H:%M:%S").str.strip_suffix(":00")
    return pl.col(column).cast(pl.String)


# Why a row is quarantined, as bits (cheap integer work per row); the text is built later, for the
# quarantined rows only (`reasons`).
FLAGS = {
    1: "wrong number of fields",
    2: "missing device_id",
    8: "interval_end",  # missing or unparsable: told apart from the raw text
    16: "interval_end not on the 15-minute grid",
    64: "channel",  # missing or not one of the four
    256: "value",  # missing or not a number
    512: "device_id not in the registry",
    1024: "device_id not registered to an active point on that day",
    2048: "interval_end is in the future (the interval had not ended when the run read it)",
    4096: "interval_end is before the earliest accepted (earliest_interval_end in config/vee.toml)",
}


def reasons() -> pl.Expr:
    """The readable reason of a staged row, from `flags`, `shape` and the raw values."""
    flags = pl.col("flags")

    def missing(column: str) -> pl.Expr:
        return _text(pl.col(f"raw_{column}")).is_null()

    texts = {
        1: pl.col("shape"),
        8: pl.when(missing("interval_end"))
        .then(pl.lit("missing interval_end"))
        .otherwise(pl.lit("unparsable interval_end (expected YYYY-MM-DD HH:MM)")),
        64: pl.when(missing("channel"))
        .then(pl.lit("missing channel"))
        .otherwise(pl.lit(f"unknown channel (expected one of {', '.join(CHANNELS)})")),
        256: pl.when(missing("value")).then(pl.lit("missing value")).otherwise(pl.lit("value is not a number")),
    }
    parts = [pl.when((flags & bit) != 0).then(texts.get(bit, pl.lit(text))) for bit, text in FLAGS.items()]
    return pl.concat_str(parts, separator="; ", ignore_nulls=True)


def _classify(
    lf: pl.LazyFrame, month: Month, point_of: pl.Series, devices: list[str], accepted: Accepted
) -> pl.LazyFrame:
    """Category, sort key and quarantine flags of every row (see the module docstring).

    `point_of[device_index * days + day]` is the point index of a registered device on a day of the
    month (-1 when it is not registered that day): a gather, not a join, so the pass stays streaming.
    `accepted.now` (local time): a reading of an interval that has not ended yet is quarantined, never
    ingested; so is one before `accepted.floor`. Neither has a month of its own (`rel` null): no absurd
    year ever reaches a month label."""
    start, end, days = month.start, month.end, month.days
    now, floor = accepted.now, accepted.floor
    span_us = int((end - start) / timedelta(microseconds=1))
    off = (pl.col("ts") - pl.lit(start)).dt.total_microseconds()
    in_month = (off >= INTERVAL_US) & (off < span_us + INTERVAL_US)
    interval = off // INTERVAL_US
    device = pl.col("device_id").cast(pl.Enum(devices), strict=False).to_physical().cast(pl.Int64)
    channel = pl.col("channel").cast(pl.Enum(list(CHANNELS)), strict=False).to_physical().cast(pl.Int64)
    day = (off - INTERVAL_US) // DAY_US
    point = pl.when(in_month).then(pl.lit(point_of).gather(pl.col("_dev") * days + day.clip(0, days - 1)))
    # cheap per-row tests on the typed columns; which of "missing" or "malformed" is told apart later,
    # for the quarantined rows only
    flag_bits = [
        (pl.col("_shape").is_not_null(), 1),
        (pl.col("device_id").is_null() | (pl.col("device_id").str.len_bytes() == 0), 2),
        (pl.col("ts").is_null(), 8),
        (off % INTERVAL_US != 0, 16),
        (pl.col("_ch").is_null(), 64),
        (pl.col("v").is_null(), 256),
        ((pl.col("device_id").str.len_bytes() > 0) & pl.col("_dev").is_null(), 512),
        (in_month & (pl.col("_point") < 0), 1024),
        (pl.col("ts") > pl.lit(now), 2048),
        (pl.col("ts") < pl.lit(floor), 4096),
    ]
    flags = pl.sum_horizontal(
        pl.when(cond.fill_null(False)).then(pl.lit(bit, pl.UInt16)).otherwise(pl.lit(0, pl.UInt16))
        for cond, bit in flag_bits
    )
    blank = (pl.col("flags") & (2 | 8 | 64 | 256)) == (2 | 8 | 64 | 256)
    category = (
        pl.when(blank & pl.all_horizontal(pl.col(f"raw_{c}").is_null() for c in COLUMNS))
        .then(CATEGORY["blank"])
        .when(pl.col("ts").is_null() | ((pl.col("flags") & (2048 | 4096)) != 0))
        .then(CATEGORY["unplaced"])
        .when(~in_month)
        .then(CATEGORY["other_month"])
        .when(pl.col("flags") != 0)
        .then(CATEGORY["quarantine"])
        .otherwise(CATEGORY["good"])
        .cast(pl.UInt8)
    )
    keep_raw = pl.col("cat").is_in([CATEGORY["quarantine"], CATEGORY["unplaced"]])
    month_offset = _month_offset(start, accepted)
    return (
        lf.with_columns(v=pl.when(pl.col("v").is_finite()).then(pl.col("v")))  # NaN, inf: not a number
        .with_columns(_dev=device, _ch=channel)
        .with_columns(_point=point)
        .with_columns(flags=flags)
        .with_columns(cat=category)
        .select(
            "cat",
            "file",
            "row",
            pl.when(pl.col("cat") == CATEGORY["good"])
            .then(keys.encode(keys.series_of(pl.col("_point"), pl.col("_ch")), interval))
            .alias("k"),
            "v",
            # the month a placed row belongs to, counted from this month (-1 the one before, 0 this one, ...)
            pl.when((pl.col("flags") & (2048 | 4096)) == 0).then(month_offset).alias("rel"),
            *[pl.when(keep_raw).then(pl.col(f"raw_{c}")).alias(f"raw_{c}") for c in COLUMNS],
            pl.when(keep_raw).then(pl.col("flags")).alias("flags"),
            pl.when(keep_raw).then(pl.col("_shape")).alias("shape"),
        )
    )


_OFFSET_TABLE_DAYS = 200 * 366  # accepted ranges longer than this (a floor centuries back) use the calendar


def _month_offset(start: datetime, accepted: Accepted) -> pl.Expr:
    """The month of a row's interval (the month it starts in: interval_end - 15 min) counted from
    `start`'s, for the interval_ends of the accepted range (others get no month: `rel` is null).

    A table of the range's days, gathered by each row's day: the calendar (`dt.year`, `dt.month`) on
    every row was a third of the classification's CPU."""
    shifted = pl.col("ts") - pl.duration(minutes=keys.INTERVAL_MINUTES)
    base = start.year * 12 + start.month
    first = datetime.combine((accepted.floor - timedelta(minutes=keys.INTERVAL_MINUTES)).date(), time())
    last = (min(accepted.now, datetime(9999, 12, 31)) - timedelta(minutes=keys.INTERVAL_MINUTES)).date()
    days = (last - first.date()).days + 1
    if not 0 < days <= _OFFSET_TABLE_DAYS:
        return (
            (shifted.dt.year().cast(pl.Int32) * 12 + shifted.dt.month().cast(pl.Int32) - base)
            .clip(-30000, 30000)
            .cast(pl.Int16)
        )
    calendar = pl.date_range(first.date(), last, "1d", eager=True)
    table = ((calendar.dt.year().cast(pl.Int32) * 12 + calendar.dt.month().cast(pl.Int32)) - base).clip(-30000, 30000)
    day = (shifted - pl.lit(first)).dt.total_microseconds() // DAY_US
    return pl.lit(table.cast(pl.Int16)).gather(day.clip(0, days - 1))


def point_lookup(device_days: pl.DataFrame, devices: list[str], days: int) -> pl.Series:
    """Dense (device index, day) -> point index table for `_classify` (-1 = not registered that day)."""
    index = {d: i for i, d in enumerate(devices)}
    table = [-1] * (len(devices) * days)
    for device, day, point in device_days.select("device_id", "day", "point_idx").iter_rows():
        table[index[device] * days + day] = point
    return pl.Series("point", table, dtype=pl.Int64)


@dataclass(frozen=True)
class Accepted:
    """The interval_end values a run accepts: from `floor` (config/vee.toml) to `now`, the time of the
    run (an interval that has not ended by then is quarantined)."""

    now: datetime
    floor: datetime = DEFAULT_FLOOR


def stage(
    month: Month,
    files: list[Path],
    indexes: list[int],
    device_days: pl.DataFrame,
    known_devices: list[str],
    out_dir: Path,
    accepted: Accepted,
    heads: dict[int, CsvHead] | None = None,
) -> Staged:
    """Read the files `files[i]` for i in `indexes` once, classified against `month`, and write the staged
    rows under `out_dir` (`file` = i: the run's numbering, in landing order). Files that cannot be read
    are recorded in `unreadable` (with the reason) and skipped; the others are always processed.
    `heads`: the CSVs' first lines as the plan read them (by index), so that they are not opened again."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _scratch_fault(exc, out_dir) or exc
    days = month.days
    devices = sorted(set(known_devices))
    point_of = point_lookup(device_days, devices, days)
    staged = Staged(out_dir, files, list(indexes))
    fast: list[int] = []
    others: list[tuple[int, pl.LazyFrame]] = []
    for index in indexes:
        path = files[index]
        try:
            head = None if path.suffix == ".parquet" else (heads or {}).get(index) or csv_head(path)
            if head is not None and not head.problem and head.exact and sniff(head.values)[0] == "contract":
                fast.append(index)  # the contract's exact header and timestamps: the multi-file scan
                continue
            lf = _reader(path, index, head)
        except Exception as exc:  # unreadable file: name it, keep the library's reason, go on
            staged.unreadable[index] = _cannot_read(exc)
            continue
        if isinstance(lf, str):
            staged.unreadable[index] = lf
        else:
            others.append((index, lf))

    def sink(lf: pl.LazyFrame, name: str) -> None:
        """Stream `lf` into the scratch dir. A failure of the machine (disk full, read-only, ...) is
        raised as an EnvironmentFault: it says nothing about the input, so the run must stop before
        publishing, never go on with the file marked unreadable."""
        targets = [out_dir / f"{_GOOD_PREFIX}{name}.parquet", out_dir / f"{name}.parquet"]
        tmps = [out_dir / f".{t.stem}.tmp" for t in targets]
        classified = _classify(lf, month, point_of, devices, accepted)
        good = pl.col("cat") == CATEGORY["good"]
        # uncompressed, no statistics: a scratch file lives for seconds (compressing it cost a CPU-second a
        # month). Both files come from one pass over the input (polars shares the plan of the two sinks)
        options = {"compression": "uncompressed", "statistics": False, "lazy": True}
        try:
            pl.collect_all(
                [
                    classified.filter(good).select(GOOD_COLUMNS).sink_parquet(tmps[0], **options),
                    classified.filter(~good).sink_parquet(tmps[1], **options),
                ],
                engine="streaming",
            )
            for tmp, target in zip(tmps, targets):
                tmp.rename(target)
        except BaseException as exc:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            raise _scratch_fault(exc, out_dir) or exc

    if fast:
        try:
            sink(_fast_scan([files[i] for i in fast], fast), "fast")
            staged.fast_files = set(fast)
        except EnvironmentFault:
            raise
        except pl.exceptions.PolarsError:
            # a ragged line or broken encoding somewhere: read those files one by one, tolerantly
            for index in fast:
                names, _, _ = header(files[index])
                others.append((index, _line_scan(files[index], index, names or list(COLUMNS))))
    for index, lf in others:
        try:
            sink(lf, f"file_{index:06d}")
        except EnvironmentFault:
            raise
        except Exception as exc:  # only a read or parse failure of this input file gets here
            staged.unreadable[index] = _cannot_read(exc)
            continue
        files_of = [out_dir / f"{_GOOD_PREFIX}file_{index:06d}.parquet", out_dir / f"file_{index:06d}.parquet"]
        unplaced = _unplaced_file(files_of)
        if unplaced is not None:  # no timestamp of the file parses: one reason for the file, not per row
            staged.unreadable[index] = unplaced
            for path in files_of:
                path.unlink()
    return staged


def _cannot_read(exc: Exception) -> str:
    """The library's reason, its first line only and cut short (it may quote the file's content)."""
    text = str(exc).strip()
    return f"cannot be read ({excerpt(text.splitlines()[0] if text else type(exc).__name__)})"


def _zoned(example: str | None) -> str:
    return f"interval_end carries a time zone (found e.g. {excerpt(repr(example))}); the contract wants {EXPECTED_TS}"


def _unplaced_file(staged: list[Path]) -> str | None:
    """The reason to report a whole file (its staged files: good rows, others) when none of its rows has a
    parsable interval_end, else None."""
    if pl.scan_parquet(staged[0]).select(pl.len()).collect().item():
        return None  # a good row's timestamp parses
    staged_file = staged[1]
    counts = (
        pl.scan_parquet(staged_file)
        .select(
            # a timestamp that parses but lies outside the accepted range still parses
            placed=(
                pl.col("cat").is_in([CATEGORY["good"], CATEGORY["quarantine"], CATEGORY["other_month"]])
                | ((pl.col("cat") == CATEGORY["unplaced"]) & ((pl.col("flags") & 8) == 0))
            ).sum(),
            unplaced=(pl.col("cat") == CATEGORY["unplaced"]).sum(),
        )
        .collect()
    )
    if counts["placed"][0] or not counts["unplaced"][0]:
        return None
    example = (
        pl.scan_parquet(staged_file)
        .filter(pl.col("cat") == CATEGORY["unplaced"])
        .select(pl.col("raw_interval_end").drop_nulls().first())
        .collect()
        .item()
    )
    if example is None or not str(example).strip():
        return "interval_end is missing on every row"
    return f"no interval_end of the file parses (found e.g. {excerpt(repr(example))}); the contract wants {EXPECTED_TS}"


def _scratch_fault(exc: BaseException, out_dir: Path) -> EnvironmentFault | None:
    """The EnvironmentFault for a failed staging write, or None when the failure is the input's.

    polars reports a full disk as e.g. `ComputeError: parquet: ... underlying IO error: No space left
    on device (os error 28)`: the OS's words are recognised by `environment_fault`."""
    if not isinstance(exc, Exception):
        return None
    return environment_fault(exc, out_dir, "write the staged readings (scratch files of this run)")
