"""Warehouse upkeep (weekly DAG `warehouse_maintenance`, or `mayorista maintain`):

1. delete files no commit ever recorded (left by a run killed mid-publish), once older than the safe age,
2. merge small data files (each publish writes a few; analysts' scans get slower with many),
3. expire snapshots older than the retention, EXCEPT those that NCC-11 runs published: those are what
   was sent to the regulator and stay readable for good (`AT (VERSION => n)`), and the current one,
4. delete data files that no remaining snapshot needs, once older than the safe age.

It may run at any time, next to any run or reader. A run in progress has written data files that no
commit records yet: they look exactly like a killed run's leftovers. A query that started before a
merge or an expiry still reads the files they replaced. Neither can be told apart from garbage by
the catalog alone, so nothing younger than the safe age (`--min-age-hours`,
MAYORISTA_MAINTENANCE_MIN_AGE_HOURS, default 24: longer than any run or query) is ever deleted.

`mayorista maintain --check` verifies every data file of the current snapshot instead (there, the
recorded size, a readable Parquet footer of the recorded length) and lists the damaged ones."""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import PurePosixPath
from urllib.parse import unquote

import duckdb

from pipelines import config, lake, warehouse
from pipelines.errors import EnvironmentFault, MayoristaError, environment_fault
from pipelines.warehouse import upkeep

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
DEFAULT_MIN_AGE_HOURS = 24.0


@dataclass
class MaintenanceResult:
    merged: int
    expired: list[int]
    kept_for_ncc11: list[int]
    files_deleted: int
    min_age_hours: float = DEFAULT_MIN_AGE_HOURS

    @property
    def summary(self) -> str:
        return (
            f"warehouse maintenance: merged {self.merged} file(s); expired {len(self.expired)} snapshot(s); "
            f"kept {len(self.kept_for_ncc11)} NCC-11 snapshot(s) for good; deleted {self.files_deleted} file(s) "
            f"older than {self.min_age_hours:g} h"
        )


def retention_days(override: int | None = None) -> int:
    return int(
        override
        if override is not None
        else os.environ.get("MAYORISTA_SNAPSHOT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    )


def min_age_hours(override: float | None = None) -> float:
    """The safe age: no file younger than this is deleted (`--min-age-hours`, else
    MAYORISTA_MAINTENANCE_MIN_AGE_HOURS, else 24). 0 deletes at once: only when no run is in progress
    and no query is running."""
    text = override if override is not None else os.environ.get("MAYORISTA_MAINTENANCE_MIN_AGE_HOURS")
    if text is None or text == "":
        return DEFAULT_MIN_AGE_HOURS
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not hours >= 0 or hours == float("inf"):
        raise MayoristaError(
            f"the safe age of maintenance must be a number of hours, 0 or more (got {text!r} from "
            f"{'--min-age-hours' if override is not None else 'MAYORISTA_MAINTENANCE_MIN_AGE_HOURS'})"
        )
    return hours


def _open(settings: config.Settings, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The warehouse, which must exist: maintenance never creates an empty catalog and reports success.
    Attaching waits for a catalog another process holds, and refuses a file that is not a catalog."""
    target = settings.warehouse
    if not warehouse.is_postgres(target) and not os.path.exists(target):
        raise warehouse.NoWarehouse(
            f"no warehouse at {target}: there is nothing to maintain (check --warehouse / MAYORISTA_WAREHOUSE)"
        )
    con = warehouse.connect(settings, read_only=True) if read_only else _connect_existing(settings)
    # DuckLake compares times as text in a SQLite catalog: every time this connection writes or
    # compares is in UTC, so that they at least share an offset
    con.execute("SET TimeZone = 'UTC'")
    return con


def _connect_existing(settings: config.Settings) -> duckdb.DuckDBPyConnection:
    if warehouse.is_postgres(settings.warehouse):
        warehouse.connect(settings, read_only=True).close()  # NoWarehouse when the database holds none
    return warehouse.connect(settings)


class _Session:
    """The maintenance connection. A call that found the catalog locked or in conflict is retried on a
    NEW connection: the old one kept failing with "database is locked" after the other process had
    committed (measured next to a publish on a SQLite catalog)."""

    def __init__(self, settings: config.Settings) -> None:
        self.target = settings
        self.con = _open(settings, read_only=False)

    def close(self) -> None:
        self.con.close()

    def step(self, what: str, sql: str) -> int:
        """One maintenance call, retried while the catalog is locked by another process or another
        commit conflicts with it (a publish committing meanwhile), up to MAYORISTA_LOCK_WAIT_S. No bound
        parameters (the values are our own numbers): the SQL text is the whole statement."""
        deadline = time.monotonic() + config.lock_wait_s()
        while True:
            try:
                # fetchall, not fetchone: a result left unread keeps the statement open, and its commit
                # was lost (measured); the rows are counted inside DuckDB (timestamps would need pytz)
                return self.con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0]
            except duckdb.Error as exc:
                text = str(exc).lower()
                if not ("database is locked" in text or "conflict" in text or "busy" in text):
                    raise warehouse.fault_of(exc, self.target, f"maintain the warehouse ({what})") from exc
                if time.monotonic() > deadline:
                    raise EnvironmentFault(
                        f"could not maintain the warehouse {warehouse.describe(self.target)} ({what}): it is locked "
                        "by another process. Nothing was deleted; run maintenance again later."
                    ) from None
                logger.warning("the warehouse %s is busy (%s); waiting", warehouse.describe(self.target), what)
                try:
                    self.con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # nothing open: the failed call was rolled back with its statement
                self.con.close()
                time.sleep(1.0)
                self.con = _open(self.target, read_only=False)


def deletion_cutoffs(now: datetime, min_age: float, *, postgres: bool) -> tuple[datetime, datetime]:
    """(older_than for orphaned files, older_than for files scheduled for deletion).

    Orphaned files are compared by their modification time inside DuckDB: the exact cutoff. Files
    scheduled for deletion are compared inside the catalog; a SQLite catalog compares them as TEXT
    ('2026-12-06 11:58:18+00' against '2026-12-06T10:58:41+00': on the cutoff's date every stored
    time sorts first, whatever the hour), so there the cutoff is taken two whole days earlier, at
    midnight UTC: then only files scheduled before the exact cutoff are deleted, even if the stored
    times carry an offset of up to 14 hours. They go up to three days later; nothing goes early."""
    exact = now - timedelta(hours=min_age)
    if postgres or min_age == 0:
        return exact, exact
    return exact, datetime.combine(exact.date(), clock(), UTC) - timedelta(days=2)


def maintain(
    where: warehouse.Where = None,
    *,
    retention_days: int | None = None,
    min_age_hours: float | None = None,
    now: datetime | None = None,
) -> MaintenanceResult:
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=globals()["retention_days"](retention_days))
    safe_age = globals()["min_age_hours"](min_age_hours)
    target = warehouse.settings(where)
    orphan_cutoff, scheduled_cutoff = deletion_cutoffs(now, safe_age, postgres=warehouse.is_postgres(target.warehouse))
    session = _Session(target)
    try:
        # first, files no commit records: a killed run's, or those of a run in progress that has not
        # committed yet (younger than the safe age: kept). It only reads the catalog; on SQLite a run's
        # open publish transaction holds the catalog, and the steps below, which write it, wait for it
        orphans = session.step("delete files no commit recorded", upkeep.delete_orphans(orphan_cutoff))
        # a merge schedules the files it replaced for deletion: a query running now still reads them,
        # and they are deleted only once older than the safe age (step 4)
        merged = session.step("merge small files", upkeep.merge_files())
        kept = _ncc11_snapshots(warehouse.Reader.over(session.con))
        current = warehouse.current_snapshot(session.con)
        old = upkeep.snapshots_before(session.con, cutoff)
        expire = [s for s in old if s not in kept and s != current]
        if expire:
            session.step("expire snapshots", upkeep.expire(expire))
        cleaned = session.step("delete files no snapshot needs", upkeep.cleanup(scheduled_cutoff))
    finally:
        session.close()
    result = MaintenanceResult(merged, expire, sorted(kept & set(old)), cleaned + orphans, safe_age)
    logger.info(result.summary)
    return result


def _ncc11_snapshots(src: warehouse.Reader) -> set[int]:
    """The snapshots NCC-11 runs published: what was sent to the regulator, kept for good."""
    if not src.has("run_manifests"):
        return set()
    rows = src.frame(
        "SELECT DISTINCT snapshot_id FROM {m} WHERE pipeline = 'ncc11' AND status = 'published' "
        "AND snapshot_id IS NOT NULL",
        m="run_manifests",
    )
    return set(rows["snapshot_id"].to_list())


# --- damaged data files ---------------------------------------------------------------------------------


@dataclass
class BadFile:
    table: str
    partition: str  # e.g. "month=2026-04" ("" for an unpartitioned table)
    path: str
    problem: str

    def line(self) -> str:
        return f"{self.table}{f' ({self.partition})' if self.partition else ''}: {self.path}: {self.problem}"


@dataclass
class CheckResult:
    files: int
    bad: list[BadFile] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.bad:
            return f"warehouse check: all {self.files} data file(s) of the current snapshot are intact"
        return (
            f"warehouse check: {len(self.bad)} of {self.files} data file(s) of the current snapshot are damaged "
            "or missing:\n" + "\n".join(f"  - {b.line()}" for b in self.bad) + f"\n{REPAIR}"
        )


REPAIR = (
    "Restore each file from a backup of the lake (same bytes), or follow 'Repairing a damaged data file' "
    "in docs/warehouse.md (drop the period's rows by their partition, then re-run the period)."
)


def _partition(path: str) -> str:
    return ", ".join(unquote(part) for part in PurePosixPath(path).parent.parts if "=" in part)


def _problem(con: duckdb.DuckDBPyConnection, path: str, size: int | None, footer: int | None) -> str | None:
    """What is wrong with one data file (None: intact): missing, another size than recorded, or a Parquet
    footer that does not read or has another length than recorded (DuckLake's own check on read)."""
    where = lake.location(path)
    try:
        actual = where.stat().st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({environment_fault(exc, path, 'read it') or exc})"
    if size is not None and actual != size:
        return f"{actual} bytes, the catalog recorded {size} (truncated or replaced)"
    try:
        with where.open("rb") as fh:
            fh.seek(max(0, actual - 8))
            tail = fh.read(8)
    except OSError as exc:
        return f"cannot be read ({exc})"
    if len(tail) < 8 or tail[4:] != b"PAR1":
        return "not a Parquet file (no Parquet footer at its end)"
    stored = int.from_bytes(tail[:4], "little")
    if footer is not None and stored != footer:
        return f"its Parquet footer is {stored} bytes, the catalog recorded {footer} (replaced)"
    try:
        con.execute("SELECT num_rows FROM parquet_file_metadata(?)", [path]).fetchall()
    except duckdb.Error as exc:
        return f"its Parquet footer does not read ({str(exc).splitlines()[0]})"
    return None


def check(where: warehouse.Where = None) -> CheckResult:
    """Verify every data file (and delete file) of the current snapshot of every table."""
    con = _open(warehouse.settings(where), read_only=True)
    try:
        files = 0
        bad: list[BadFile] = []
        for table in sorted(warehouse.tables(con)):
            rows = upkeep.files(con, table)
            for data, data_size, data_footer, delete, delete_size, delete_footer in rows:
                for path, size, footer in ((data, data_size, data_footer), (delete, delete_size, delete_footer)):
                    if path is None:
                        continue
                    files += 1
                    problem = _problem(con, path, size, footer)
                    if problem:
                        bad.append(BadFile(table, _partition(path), path, problem))
    finally:
        con.close()
    return CheckResult(files, bad)


_FILE_ERRORS = (
    re.compile(r"No magic bytes found at end of file '(?P<path>[^']+)'"),
    re.compile(r"File '(?P<path>[^']+)' too small to be a Parquet file"),
    re.compile(r'Cannot open file "(?P<path>[^"]+\.parquet)"'),
    re.compile(r'No files found that match the pattern "(?P<path>[^"]+\.parquet)"'),
    re.compile(r"Invalid footer length provided for file '(?P<path>[^']+)'"),
    re.compile(r"Parquet footer length stored in file is not equal to footer length provided"),
    # any other read error that names one of the lake's Parquet files
    re.compile(r"(?:Invalid Input Error|IO Error)[^\n]*?['\"](?P<path>[^'\"]+\.parquet)['\"]"),
)


def damaged_file_error(exc: BaseException, where: warehouse.Where = None) -> MayoristaError | None:
    """A clear error for a read that failed on a damaged or missing data file of the warehouse (the
    footer check caught it: nothing wrong was computed), naming the table, partition and file and
    the way to repair; None for any other error, and for a failure of the machine (a full or read-only
    disk also names the Parquet file it could not write: that is not a damaged file)."""
    if isinstance(exc, EnvironmentFault):
        return None
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 5:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    text = "\n".join(str(e) for e in seen)
    match = next((m for m in (p.search(text) for p in _FILE_ERRORS) if m), None)
    if match is None:
        return None
    path = match.groupdict().get("path")
    try:
        found = check(where).bad
    except Exception:  # noqa: BLE001 - the read's own error is still named below, without the check's detail
        found = []
    named = [b for b in found if path is None or os.path.normpath(b.path) == os.path.normpath(path)]
    if named:
        first = named[0]
        what = (
            f"the warehouse's data file {first.path} (table {first.table}"
            f"{', ' + first.partition if first.partition else ''}) is damaged: {first.problem}"
        )
        others = len(found) - 1
    elif path:
        what = f"the warehouse's data file {path} (partition {_partition(path) or '-'}) cannot be read"
        others = len(found)
    else:
        return None
    more = f" ({others} other damaged file(s))" if others > 0 else ""
    return MayoristaError(
        f"{what}{more}. Its rows cannot be read; nothing wrong was computed and nothing was published. "
        f"Run `mayorista maintain --check` to list every damaged file. {REPAIR}"
    )


def _partition_values(path: str) -> dict[str, str]:
    return dict(unquote(part).split("=", 1) for part in PurePosixPath(path).parent.parts if "=" in part)


def repair(where: warehouse.Where = None) -> str:
    """Take the partitions of damaged data files out of the current snapshot, so that a re-run of their
    period can republish them whole (DuckLake's DELETE of a period's rows reads its files, so a re-run
    alone cannot). In ONE transaction, each such table is rebuilt from its other partitions, which
    are read without touching the damaged files (partition pruning); older snapshots still read as
    they were. Returns what to re-run."""
    target = warehouse.settings(where)
    damaged = check(target).bad
    if not damaged:
        return "warehouse repair: no damaged data file in the current snapshot; nothing to do"
    by_table: dict[str, list[dict[str, str]]] = {}
    for bad in damaged:
        values = _partition_values(bad.path)
        if len(values) != 1:
            raise MayoristaError(
                f"the damaged data file {bad.path} belongs to table {bad.table}, which is not partitioned by "
                "one period column: restore the file from a backup of the lake (nothing was changed)"
            )
        if values not in by_table.setdefault(bad.table, []):
            by_table[bad.table].append(values)
    _open(target, read_only=True).close()  # the catalog must exist (and be a catalog)
    with warehouse.transaction(target, what="repair the warehouse") as con:
        for table, partitions in by_table.items():
            (column,) = partitions[0]  # one period column per table (checked above)
            # the rows of every other partition, read without opening the damaged files
            upkeep.rebuild_without(con, table, column, [part[column] for part in partitions])
    lines = [
        f"  - {table}: {', '.join(', '.join(f'{c}={v}' for c, v in part.items()) for part in parts)}"
        for table, parts in by_table.items()
    ]
    return (
        "warehouse repair: the rows of these partitions were taken out of the current snapshot (their damaged "
        "files are no longer read; older snapshots are unchanged). Re-run each period now to republish it whole:\n"
        + "\n".join(lines)
    )
