"""The ledger of landed readings files (warehouse table `landed_files`): which files a run reads, and
in which order readings supersede each other.

PrimeRead lands one file per participant and day, for years; participants re-send corrected days. A
run must cost the NEW files, not the history, and of two files holding the same reading the one that
landed later must win, whatever its name. So every file a run reads is recorded, in the same
transaction as its readings, with its path (under the landing folder), size, modification time,
sha256, and per month it holds: rows, first and last interval, the run and time it was first seen,
and its status (`ingested`, `quarantined`: all its rows of that month were quarantined, `unreadable`,
`refused`: a link resolving outside the landing folder, or not a regular file, never opened,
`deferred`: every row is of a month after the run's; `month` is the first month it holds).

Which files a run reads (`plan`):
  - known: the path is in the ledger with the same size and modification time, or with the same
    sha256 (only touched): skipped, never parsed again;
  - new or changed (a new version of a known path: a different sha256): read, in landing order
    (modification time, then path), when they hold any row of the run's month or of an earlier one;
    such a file is read for every month it holds rows of, later months included (their readings are
    stored; their findings and aggregates are left to their own runs), and recorded per month;
  - holding only rows of months after the run's: left for that month's run (a backfill of January
    does not read December's files). Which month a file starts in is told by its earliest interval
    between the floor (`earliest_interval_end`, config/vee.toml) and the time of the run, found by
    reading its interval_end column whole when its first lines point past the run's month: one row
    dated 2062 (or 0001) never decides for the file, it is quarantined with its line. The file is
    recorded as `deferred` with that first month, so later runs do not open it again until their month
    reaches it (the same path, size and modification time, or the same sha256); a changed file is
    looked at again;
  - in a backfill (`Ahead`: the months up to its last one), a file whose first lines place it in a later
    month of the backfill is left for that month's run without being read through, and not recorded: the
    backfill reads each file once. Should that month's run find rows of earlier months in it, it
    recomputes every month from the earliest of them to its own (job.py), so the backfill ends where
    reading the file through first would have; a backfill cut short leaves such files unrecorded, and
    the next run plans them as new;
  - links resolving outside the landing folder, and anything that is not a regular file: refused,
    named in the run's summary and recorded as `refused`, never opened;
  - unreadable last time: read again (the participant may have fixed it);
  - in the ledger but gone from the landing folder: reported; their readings stay in the warehouse.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.landing_zone import LazyFiles, RemoteReadings
from pipelines.manifest import file_sha256 as sha256  # the one sha256 helper
from pipelines.metering.landing import CsvHead, earliest_interval_end, first_lines, list_landing
from pipelines.metering.readings import first_months
from pipelines.periods import Month
from pipelines.warehouse import Reader, registry

logger = logging.getLogger(__name__)

TABLE = "landed_files"
STATUSES = ("ingested", "quarantined", "unreadable", "refused", "deferred")
READ = ("ingested", "quarantined")  # a version recorded with one of these is never read again
SCHEMA = registry.table(TABLE).schema  # declared with the warehouse's tables


def hashes(p: Plan) -> dict[int | str, str]:
    """The sha256 of the files the run reads (by index) and of the files it defers (by label)."""
    found: dict[int | str, str] = {i: p.known_hashes.get(i) or sha256(f) for i, f in enumerate(p.files)}
    found.update({w.label: w.sha256 or sha256(w.path) for w in p.waiting})
    return found


def label(path: Path, input_dir: Path) -> str:
    """A file's name in the ledger: its path under the landing folder (`readings/...`)."""
    return Path(path).relative_to(input_dir).as_posix()


@dataclass(frozen=True)
class Waiting:
    """A landed file left for a later month's run, to record as `deferred` with its first month."""

    path: Path
    label: str
    month: Month
    size: int
    mtime: int  # ns
    sha256: str | None  # known when hashed while planning


@dataclass(frozen=True)
class Ahead:
    """A backfill's later months, up to `until`: a file whose first lines place it in one of them is left
    for that month's run of the backfill without being read through. `files`: the files the backfill's
    earlier runs left for its later months (unread, or deferred in the ledger), label -> (size,
    modification time in ns, month): not opened again before their month."""

    until: Month
    files: dict[str, tuple[int, int, Month]] = field(default_factory=dict)


@dataclass
class Plan:
    """What a run of `month` reads. `files` are in landing order (modification time, then path): the
    run's file index, by which a later file supersedes an earlier one."""

    month: Month
    files: list[Path] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    mtimes: list[int] = field(default_factory=list)  # ns
    hints: list[Month | None] = field(default_factory=list)
    heads: dict[int, CsvHead] = field(default_factory=dict)  # the CSVs' first lines, read once here
    known_hashes: dict[int, str] = field(default_factory=dict)  # hashed while planning (a changed path)
    skipped: int = 0  # already ingested, unchanged
    retried: list[str] = field(default_factory=list)  # unreadable last time
    new_versions: list[str] = field(default_factory=list)  # known paths whose content changed
    deferred: list[str] = field(default_factory=list)  # every row of a month after the run's
    waiting: list[Waiting] = field(default_factory=list)  # the deferred files to (re)record in the ledger
    not_opened: int = 0  # deferred files known from the ledger: not opened by this run
    missing: list[str] = field(default_factory=list)  # in the ledger, gone from the landing folder
    refused: dict[str, str] = field(default_factory=dict)  # label -> why it is not read (a link outside, ...)
    runs: set[str] = field(default_factory=set)  # the runs in the ledger when planned (the publish guard)
    gone_waiting: list[str] = field(default_factory=list)  # deferred in the ledger, gone from the landing folder
    ahead: dict[str, tuple[int, int, Month]] = field(default_factory=dict)  # for later months of the backfill
    left_before: set[int] = field(default_factory=set)  # files read now that an earlier run of the backfill left


def load(source: Reader | duckdb.DuckDBPyConnection | None) -> pl.DataFrame:
    """The ledger's rows (empty before the first run); `source` is the run's warehouse reader (or a read
    connection with the warehouse attached), None when there is no warehouse yet."""
    src = source if isinstance(source, Reader) else Reader.over(source)
    if not src.has(TABLE):
        return pl.DataFrame(schema=SCHEMA)
    return src.frame("SELECT * FROM {t}", t=TABLE)


def plan(
    input_dir: Path | RemoteReadings,
    month: Month,
    ledger: pl.DataFrame,
    now: datetime | None = None,
    floor: datetime | None = None,
    ahead: Ahead | None = None,
) -> Plan:
    """Which landed files the run of `month` reads (see the module docstring). `input_dir`: the landing
    folder, or its readings on S3 (pipelines/landing_zone.py); `now`: the time of the run (local);
    `floor`: the earliest interval_end accepted (default from config/vee.toml); `ahead`: the run is one
    month of a backfill that goes on to `ahead.until`."""
    now = now or datetime.max
    floor = floor or earliest_interval_end()
    result = Plan(month, runs=set(ledger["run_id"].drop_nulls().to_list()))
    if isinstance(input_dir, RemoteReadings):
        # a landing zone on S3: the listing gives key, size and last-modified; an object is fetched only
        # when this plan opens it (new or changed), through `found[i]`
        objects, result.refused = input_dir.list()
        labels = [o.label for o in objects]
        found: Sequence[Path] = LazyFiles(input_dir, labels)
        sizes, mtimes = [o.size for o in objects], [o.mtime_ns for o in objects]
    else:
        input_dir = Path(input_dir)
        listed = list_landing(input_dir)
        result.refused = {label(p, input_dir): why for p, why in listed.refused.items()}
        found, sizes, mtimes = listed.files, listed.sizes, listed.mtimes
        labels = [f"readings/{name}" for name in listed.names]  # `label` of each, without its path arithmetic
    listing = pl.DataFrame(
        {
            "i": range(len(found)),
            "path": labels,
            "size_bytes": sizes,
            "mtime_ns": mtimes,
        },
        schema={"i": pl.Int64, "path": pl.String, "size_bytes": pl.Int64, "mtime_ns": pl.Int64},
    )
    # the ledger keeps modification times in microseconds (the warehouse's timestamp precision): compare
    # at that precision, or every file would look touched and be hashed again on every run
    done = (
        ledger.filter(pl.col("status").is_in(READ))
        .with_columns(mtime_us=pl.col("modified_at").dt.epoch("us"))
        .select("path", "sha256", "size_bytes", "mtime_us")
        .unique()
    )
    same = (
        listing.with_columns(mtime_us=pl.col("mtime_ns") // 1000)
        .join(done, on=["path", "size_bytes", "mtime_us"], how="semi")
        .drop("mtime_us")
    )
    others = listing.join(same.select("i"), on="i", how="anti")
    result.skipped = same.height
    known_paths = set(done["path"].to_list())
    unreadable_paths = (
        set(ledger.filter(pl.col("status").is_in(["unreadable", "refused"]))["path"].to_list()) - known_paths
    )
    # files recorded as deferred: their first month is known, unchanged files are not opened again
    waiting = (
        ledger.filter(pl.col("status") == "deferred")
        .with_columns(mtime_us=pl.col("modified_at").dt.epoch("us"))
        .select("path", "sha256", "size_bytes", "mtime_us", "month")
        .unique()
    )
    unchanged = (
        listing.with_columns(mtime_us=pl.col("mtime_ns") // 1000)
        .join(others.select("i"), on="i", how="semi")
        .join(waiting, on=["path", "size_bytes", "mtime_us"])
        .select("i", "month", "sha256")
        .unique("i")
    )
    first_month: dict[int, Month] = {i: Month.parse(label) for i, label, _ in unchanged.iter_rows()}
    recorded_sha = {i: digest for i, _, digest in unchanged.iter_rows() if digest}  # not hashed again when read
    # a known path with another size or time: hash it now; the same content is only a touched file
    touched = others.filter(
        pl.col("path").is_in(list(known_paths | set(waiting["path"].to_list()))) & ~pl.col("i").is_in(list(first_month))
    )
    hashes: dict[int, str] = {}
    if touched.height:
        with ThreadPoolExecutor(max_workers=2) as pool:
            digests = list(pool.map(lambda i: sha256(found[i]), touched["i"].to_list()))
        hashes = dict(zip(touched["i"].to_list(), digests))
        versions = set(done.select(pl.concat_str("path", "sha256", separator="\0")).to_series().to_list())
        waiting_versions = dict(waiting.select(pl.concat_str("path", "sha256", separator="\0"), "month").iter_rows())
        for i, digest in hashes.items():
            version = f"{listing['path'][i]}\0{digest}"
            if version in versions:
                result.skipped += 1
                others = others.filter(pl.col("i") != i)
            elif version in waiting_versions:
                first_month[i] = Month.parse(waiting_versions[version])
            elif listing["path"][i] in known_paths:
                result.new_versions.append(listing["path"][i])
    candidates = []
    looked: dict[int, tuple[Month | None, CsvHead | None]] = {}
    left = _left_before(listing, ahead)
    for i in others["i"].to_list():
        if i in first_month and first_month[i] > month:
            looked[i] = (first_month[i], None)  # still waiting for its month: not opened
            result.not_opened += 1
        elif (left_for := left.get(i)) is not None and left_for > month:
            looked[i] = (left_for, None)  # left by the backfill's run before, for a later month: not opened
        else:
            looked[i] = first_lines(found[i], floor, now)
    # a file whose first lines point past the run's month, or nowhere: its earliest valid interval decides,
    # unless a later month of the backfill reads it whole anyway
    unsure = [
        i
        for i, (hint, _) in looked.items()
        if (hint is None or hint > month)
        and i not in first_month
        and not (ahead is not None and hint is not None and hint <= ahead.until)
    ]
    if unsure:
        earliest = first_months(found, unsure, floor, now, {i: looked[i][1] for i in unsure if looked[i][1]})
        looked.update({i: (earliest[i], looked[i][1]) for i in unsure})
    looked.update({i: (m, looked[i][1]) for i, m in first_month.items() if m <= month})
    for i, path_label in zip(others["i"].to_list(), others["path"].to_list()):
        hint, head = looked[i]
        if hint is not None and hint > month:
            result.deferred.append(path_label)
            if ahead is not None and hint <= ahead.until:  # its month's run of the backfill reads it
                result.ahead[path_label] = (int(listing["size_bytes"][i]), int(listing["mtime_ns"][i]), hint)
                if i not in first_month:  # left unread, not recorded
                    continue
            if i not in first_month or i in hashes:  # new, or touched: (re)recorded with its time
                size, mtime = int(listing["size_bytes"][i]), int(listing["mtime_ns"][i])
                result.waiting.append(Waiting(found[i], path_label, hint, size, mtime, hashes.get(i)))
            continue
        if path_label in unreadable_paths:
            result.retried.append(path_label)
        candidates.append((listing["mtime_ns"][i], path_label, i, hint, head))
    for mtime, path_label, i, hint, head in sorted(candidates, key=lambda c: c[:3]):
        if head is not None:
            result.heads[len(result.files)] = head
        if i in hashes or i in recorded_sha:
            result.known_hashes[len(result.files)] = hashes.get(i) or recorded_sha[i]
        if i in left:
            result.left_before.add(len(result.files))
        result.files.append(found[i])
        result.labels.append(path_label)
        result.sizes.append(int(listing["size_bytes"][i]))
        result.mtimes.append(int(mtime))
        result.hints.append(hint)
    listed = set(listing["path"].to_list())
    result.missing = sorted(p for p in known_paths if p not in listed)
    result.gone_waiting = sorted(set(waiting["path"].to_list()) - listed)
    logger.info(
        "%s: %d landed file(s): %d to read, %d already ingested, %d left for later months (%d of them not "
        "opened: deferred in the ledger; %d for later months of the backfill, none read through), %d missing, "
        "%d refused",
        month,
        len(found),
        len(result.files),
        result.skipped,
        len(result.deferred),
        result.not_opened,
        len(result.ahead),
        len(result.missing),
        len(result.refused),
    )
    return result


def _left_before(listing: pl.DataFrame, ahead: Ahead | None) -> dict[int, Month | None]:
    """The listed files (by index) that the backfill's earlier runs left unread: their month, None for
    one changed since (its first lines are read again)."""
    if ahead is None or not ahead.files:
        return {}
    found: dict[int, Month | None] = {}
    for i, path, size, mtime in listing.select("i", "path", "size_bytes", "mtime_ns").iter_rows():
        known = ahead.files.get(path)
        if known is not None:
            found[i] = known[2] if known[:2] == (size, mtime) else None
    return found


def undeferred(p: Plan, read: list[str]) -> pl.DataFrame:
    """The paths whose `deferred` rows go: read now, recorded again (changed or touched), or gone."""
    paths = sorted({*read, *(w.label for w in p.waiting), *p.gone_waiting})
    return pl.DataFrame({"path": paths}, schema={"path": pl.String})


def changed_while_read(p: Plan, indexes: list[int]) -> list[int]:
    """The files (of `indexes`) whose size or modification time differs from when the run listed them:
    a file still being written. Their rows are not ingested and they are not recorded: the next run
    reads them again."""
    moved = []
    for i in indexes:
        try:
            s = os.stat(p.files[i])
        except OSError:
            moved.append(i)
            continue
        if s.st_size != p.sizes[i] or s.st_mtime_ns != p.mtimes[i]:
            moved.append(i)
    return moved


def rows(
    p: Plan,
    per_month: pl.DataFrame,
    unreadable: dict[int, tuple[Month, str]],
    hashes: dict[int | str, str],
    run_id: str,
    seen_at: datetime,
) -> pl.DataFrame:
    """The ledger rows of the files this run read: one per file and month it holds (`per_month`: file,
    month, rows, good, first_interval, last_interval), one per unreadable file (month = the month it was
    read for, reason), one per refused path (month = the run's, reason: never opened)."""

    def file_columns(index: pl.Expr) -> dict[str, pl.Expr]:
        return {
            "path": pl.lit(pl.Series(p.labels, dtype=pl.String)).gather(index),
            "sha256": pl.lit(pl.Series([hashes.get(i) for i in range(len(p.files))], dtype=pl.String)).gather(index),
            "size_bytes": pl.lit(pl.Series(p.sizes, dtype=pl.Int64)).gather(index),
            "modified_at": pl.from_epoch(pl.lit(pl.Series(p.mtimes, dtype=pl.Int64)).gather(index), "ns").cast(
                pl.Datetime("us")
            ),
        }

    read = per_month.select(
        **file_columns(pl.col("file")),
        month="month",
        rows=pl.col("rows").cast(pl.Int64),
        first_interval="first_interval",
        last_interval="last_interval",
        first_seen_at=pl.lit(seen_at, pl.Datetime("us")),
        run_id=pl.lit(run_id),
        status=pl.when(pl.col("good") > 0).then(pl.lit("ingested")).otherwise(pl.lit("quarantined")),
        reason=pl.lit(None, pl.String),
    )
    bad = pl.DataFrame(
        {
            "file": list(unreadable),
            "month": [m.label for m, _ in unreadable.values()],
            "reason": [why for _, why in unreadable.values()],
        },
        schema={"file": pl.Int64, "month": pl.String, "reason": pl.String},
    )
    failed = bad.select(
        **file_columns(pl.col("file")),
        month="month",
        rows=pl.lit(None, pl.Int64),
        first_interval=pl.lit(None, pl.Datetime("us")),
        last_interval=pl.lit(None, pl.Datetime("us")),
        first_seen_at=pl.lit(seen_at, pl.Datetime("us")),
        run_id=pl.lit(run_id),
        status=pl.lit("unreadable"),
        reason="reason",
    )
    refused = pl.DataFrame(
        {"path": list(p.refused), "reason": list(p.refused.values())}, schema={"path": pl.String, "reason": pl.String}
    ).select(
        "path",
        sha256=pl.lit(None, pl.String),
        size_bytes=pl.lit(None, pl.Int64),
        modified_at=pl.lit(None, pl.Datetime("us")),
        month=pl.lit(p.month.label),
        rows=pl.lit(None, pl.Int64),
        first_interval=pl.lit(None, pl.Datetime("us")),
        last_interval=pl.lit(None, pl.Datetime("us")),
        first_seen_at=pl.lit(seen_at, pl.Datetime("us")),
        run_id=pl.lit(run_id),
        status=pl.lit("refused"),
        reason="reason",
    )
    deferred = pl.DataFrame(
        {
            "path": [w.label for w in p.waiting],
            "sha256": [hashes.get(w.label) for w in p.waiting],
            "size_bytes": [w.size for w in p.waiting],
            "mtime_ns": [w.mtime for w in p.waiting],
            "month": [w.month.label for w in p.waiting],
        },
        schema={
            "path": pl.String,
            "sha256": pl.String,
            "size_bytes": pl.Int64,
            "mtime_ns": pl.Int64,
            "month": pl.String,
        },
    ).select(
        "path",
        "sha256",
        "size_bytes",
        modified_at=pl.from_epoch("mtime_ns", "ns").cast(pl.Datetime("us")),
        month="month",
        rows=pl.lit(None, pl.Int64),
        first_interval=pl.lit(None, pl.Datetime("us")),
        last_interval=pl.lit(None, pl.Datetime("us")),
        first_seen_at=pl.lit(seen_at, pl.Datetime("us")),
        run_id=pl.lit(run_id),
        status=pl.lit("deferred"),
        reason=pl.format("every row is of {} or later: read by that month's run", "month"),
    )
    frames = [read, failed, refused, deferred]
    return pl.concat([f.cast(SCHEMA) for f in frames]).sort("path", "month")
