"""The landing folder (`<input>/readings/`) and what a readings file's first lines say, before any
row is parsed: which paths may be read at all (`landing`: regular files inside the folder only), a
CSV's header and how it writes interval_end (`csv_head`, `sniff`), and the month its first lines hint at
(`first_lines`). The floor of accepted timestamps (`earliest_interval_end`) and the excerpt rule for
echoed text live here too: the plan (ledger.py) and the parse (readings.py) both use them."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import overload

import polars as pl

from pipelines import config
from pipelines.periods import Month

COLUMNS = ("device_id", "interval_end", "channel", "value")
TS_FORMAT = "%Y-%m-%d %H:%M"
SNIFF_LINES = 20
TS_CONTRACT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
TS_LOCAL_VARIANT = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:00)?")
TS_ZONED = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?(Z|UTC|[+-]\d{2}(:?\d{2})?)", re.IGNORECASE)
EXCERPT_CHARS = 200  # raw text echoed in a reason or a message: a short excerpt, never a whole line
DEFAULT_FLOOR = datetime(2000, 1, 1)


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `text` (a header, a value, a library's message) for a reason or a
    message: one hostile line must not become a 100 KB reason, nor a file's content end up on stderr."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def earliest_interval_end(path: Path | None = None) -> datetime:
    """The floor of accepted interval_end values (`[readings] earliest_interval_end` of config/vee.toml,
    default 2000-01-01): older readings are quarantined, never taken for a month of their own."""
    path = Path(path or config.config_dir() / "vee.toml")
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("readings", {}).get("earliest_interval_end")
    except FileNotFoundError:
        value = None
    if value is None:
        return DEFAULT_FLOOR
    floor = datetime(value.year, value.month, value.day, *(getattr(value, a, 0) for a in ("hour", "minute")))
    if floor.year < 1000:  # a month label is YYYY-MM: four digits
        raise ValueError(f"{path}: [readings] earliest_interval_end must be in year 1000 or later, got {value}")
    return floor


def find_files(input_dir: Path) -> list[Path]:
    """All readings files under `<input>/readings/`, in path order (which of them a run reads, and in
    which order they supersede each other, is the ledger's business: pipelines/metering/ledger.py)."""
    return landing(input_dir)[0]


class Paths(Sequence[Path]):
    """The paths of listed files, made when asked for: a run opens only its new files, and making a
    `Path` costs more than listing the file (40 µs against 25, on a year of daily files)."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root, self.names = root, names

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> Path: ...
    @overload
    def __getitem__(self, i: slice) -> list[Path]: ...
    def __getitem__(self, i: int | slice) -> Path | list[Path]:
        if isinstance(i, slice):
            return [self.root / name for name in self.names[i]]
        return self.root / self.names[i]


@dataclass(frozen=True)
class Listing:
    """The landing folder as listed once: the readings files a run may read (in path order, with their
    names under `readings/`, sizes and modification times in ns) and the paths refused, with why."""

    root: Path  # <input>/readings
    names: list[str]
    sizes: list[int]
    mtimes: list[int]
    refused: dict[Path, str]

    @property
    def files(self) -> Paths:
        return Paths(self.root, self.names)


def landing(input_dir: Path) -> tuple[list[Path], dict[Path, str]]:
    """(the readings files a run may read, in path order; the ones it refuses, with why): see `list_landing`."""
    found = list_landing(input_dir)
    return list(found.files), found.refused


def list_landing(input_dir: Path) -> Listing:
    """The readings files under `<input>/readings/` (names starting with `.` or `_`, in any part of the
    path, are not readings).

    Only regular files whose real path lies inside the landing folder's real path are read: a link
    (or a linked folder) that resolves outside it, a link to nothing, a FIFO or a device is refused and
    named, never opened (`passwd.csv -> /etc/passwd` would otherwise put a line of it in a reason). A
    link inside the landing folder to a file inside it is read under its own name. Linked folders are
    not walked into.

    One `scandir` per folder and one `lstat` per entry: a year of daily files is tens of thousands of
    paths, listed by every run, so only links are resolved (a plain entry below a folder that is not a
    link lies inside it) and nothing is stat'ed twice."""
    root = Path(input_dir) / "readings"
    real_root = root.resolve()
    found: list[tuple[str, int, int]] = []
    refused: dict[str, tuple[Path, str]] = {}
    folders: list[tuple[str, str]] = [(str(root), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as listed:
                entries = list(listed)
        except (FileNotFoundError, NotADirectoryError):  # no readings folder (yet): nothing landed
            continue
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue  # hidden, or a writer's temporary: not a readings file, nor a folder of them
            name = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                folders.append((entry.path, name + "/"))  # a folder named like a file too: its content is listed
                continue
            if os.path.splitext(entry.name)[1] not in (".csv", ".parquet"):
                continue
            try:
                if entry.is_symlink():
                    path = Path(entry.path)
                    if not path.resolve().is_relative_to(real_root):
                        refused[name] = (path, "a link that resolves outside the landing folder: not read")
                        continue
                    info = path.stat()
                else:
                    info = entry.stat(follow_symlinks=False)
            except OSError:
                refused[name] = (Path(entry.path), "a link to nothing: not read")
                continue
            if stat.S_ISDIR(info.st_mode):
                continue  # a link to a folder inside: not walked into
            if not stat.S_ISREG(info.st_mode):
                refused[name] = (Path(entry.path), "not a regular file (a FIFO, socket or device): not read")
                continue
            found.append((name, info.st_size, info.st_mtime_ns))
    found.sort(key=lambda f: f[0])
    return Listing(
        root,
        [f[0] for f in found],
        [f[1] for f in found],
        [f[2] for f in found],
        {path: why for _, (path, why) in sorted(refused.items())},
    )


def header(path: Path) -> tuple[list[str] | None, bool, str]:
    """(column names, exact contract header without BOM, problem) from a CSV's first line."""
    with open(path, "rb") as fh:
        first = fh.readline(65536)
    if not first.strip():
        return None, False, "empty file (no header line)"
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        return None, False, "header line is not UTF-8 text"
    exact = text.rstrip("\r\n") == ",".join(COLUMNS)
    names = [c.strip().strip('"').strip().lower() for c in text.lstrip("\ufeff").rstrip("\r\n").split(",")]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        return None, False, f"header lacks column(s) {', '.join(missing)} (found {excerpt(', '.join(names))})"
    return names, exact, ""


def sniff(values: list[str | None]) -> tuple[str, str | None]:
    """How a file writes interval_end, from its first values: ("contract" | "local" | "zoned" |
    "unknown", an example). "local" = `:00` seconds and/or a `T`: the same local time, read leniently."""
    seen = [v.strip().strip('"').strip() for v in values if v is not None and v.strip().strip('"').strip()]
    if not seen:
        return "contract", None
    if all(TS_ZONED.fullmatch(v) for v in seen):
        return "zoned", seen[0]
    variant = next((v for v in seen if TS_LOCAL_VARIANT.fullmatch(v) and not TS_CONTRACT.fullmatch(v)), None)
    if variant is not None:
        return "local", variant
    if any(TS_CONTRACT.fullmatch(v) for v in seen):
        return "contract", None
    return "unknown", seen[0]


def _first_interval_ends(path: Path, names: list[str]) -> list[str | None]:
    """interval_end as written on a CSV's first lines after the header (None where a line lacks it)."""
    column = names.index("interval_end")
    values: list[str | None] = []
    with open(path, "rb") as fh:
        fh.readline(65536)
        for _ in range(SNIFF_LINES):
            line = fh.readline(65536)
            if not line:
                break
            fields = line.decode("utf-8", errors="replace").rstrip("\r\n").split(",")
            values.append(fields[column] if column < len(fields) else None)
    return values


@dataclass(frozen=True)
class CsvHead:
    """What a CSV's first lines say: its header (column names, exact contract header, problem) and the
    interval_end values of the lines after it. Read once, by the plan; the parse uses it again."""

    names: list[str] | None
    exact: bool
    problem: str
    values: list[str | None]


def csv_head(path: Path) -> CsvHead:
    names, exact, problem = header(path)
    return CsvHead(names, exact, problem, _first_interval_ends(path, names) if names else [])


def first_lines(
    path: Path, floor: datetime | None = None, now: datetime | None = None
) -> tuple[Month | None, CsvHead | None]:
    """(the month of the first readable interval_end in the file's first lines that lies between `floor`
    and `now`, or None when none does; the CSV's head, None for Parquet or a file that cannot be opened).

    The month is only a hint of which run should read a file not seen before: a file whose hint lies
    after the run's month is looked at whole (`first_months`) before it is left for a later run, and a
    file holding several months is staged for each of them."""
    head = None
    try:
        if path.suffix == ".parquet":
            first = pl.scan_parquet(path).select("interval_end").head(SNIFF_LINES).collect()["interval_end"]
            if isinstance(first.dtype, pl.Datetime):
                values = [v.strftime(TS_FORMAT) for v in first.drop_nulls().to_list()]
            else:
                values = first.cast(pl.String).to_list()
        else:
            head = csv_head(path)
            values = [] if head.problem else head.values
    except Exception:  # noqa: BLE001 - an unreadable file is read (and reported) by the current run
        return None, None
    return _month_of(values, floor or DEFAULT_FLOOR, now or datetime.max), head


def _month_of(values: list[str | None], floor: datetime, now: datetime) -> Month | None:
    for value in values:
        text = (value or "").strip().strip('"').strip().replace("T", " ")
        if TS_LOCAL_VARIANT.fullmatch(text):
            try:
                ts = datetime.strptime(text[:16], TS_FORMAT)
            except ValueError:
                continue
            if floor <= ts <= now:
                return Month.of_interval_end(ts)
    return None
