"""Writing: a run's tables replaced in ONE transaction (`publish`), the tables created as the registry
declares them (partition), a run's big files adopted as data files, and the few DuckLake calls a
publish makes inside its transaction (the snapshot it will create, its commit message)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import polars as pl

from pipelines import config, lake
from pipelines.errors import environment_fault
from pipelines.warehouse import registry
from pipelines.warehouse.catalog import (
    _LOCK_DEADLINE,
    ALIAS,
    Where,
    _locked_fault,
    connect,
    data_path,
    describe,
    identifier,
    literal,
    lock_budget,
    settings,
)
from pipelines.warehouse.faults import _is_conflict, fault_of
from pipelines.warehouse.reader import tables

logger = logging.getLogger(__name__)

_CONFLICT_RETRIES = 6
Rows = pl.DataFrame | str  # a frame, or a local Parquet path/glob read by DuckDB directly


@dataclass
class Write:
    """Replace the rows of `table` that match `where` (column = value) with `rows`. The table's partition
    (the columns DuckLake lays its files out by) is the registry's (`registry.TABLES`); `partition` is
    only for a table the registry does not declare (an ad-hoc table in a test). A registered table's
    writes are built by its declaration: `registry.table("ncc11_energy").replace(rows, quarter)`; an
    explicit `partition` other than the declared one is honoured with a warning.

    `delete_keys` (a frame): delete only the rows matching `where` AND one of its rows (on its columns)
    before adding `rows`: a few superseded readings out of a month, one file's quarantine rows. `append`:
    delete nothing, only add (`where` still names the partition an adopted file goes to). Key values
    are bound as a registered relation, never written into SQL text.

    `adopt`: the rows (a local Parquet file with the table's columns, or a frame, written by polars) become
    one of the table's data files as they are, registered in the same transaction
    (`ducklake_add_data_files`), instead of being read and re-encoded by DuckDB: for the month's 24
    million readings and 6 million hourly values. On an object-store lake they are inserted as usual."""

    table: str
    rows: Rows
    where: dict[str, Any] = field(default_factory=dict)
    partition: Sequence[str] | None = None  # None: the registry's (none for an unregistered table)
    adopt: bool = False
    delete_keys: pl.DataFrame | None = None
    append: bool = False

    def __post_init__(self) -> None:
        declared = registry.BY_NAME.get(self.table)
        if self.partition is None:
            self.partition = declared.partition if declared else ()
            return
        self.partition = tuple(self.partition)
        if declared is not None and self.partition != declared.partition:
            # honoured (a test harness may lay a table out its own way), but the pipelines never do:
            # tests/test_lake_uri.py checks their tables against the registry
            logger.warning(
                "%s is written partitioned by %s; the registry declares %s",
                self.table,
                self.partition,
                declared.partition,
            )


def _relation(con: duckdb.DuckDBPyConnection, rows: Rows) -> duckdb.DuckDBPyRelation:
    if isinstance(rows, str):
        return con.read_parquet(rows)
    return con.from_arrow(rows.to_arrow())


def _ensure_tables(con: duckdb.DuckDBPyConnection, writes: Sequence[Write]) -> None:
    """Create missing tables and add missing columns, all in ONE commit of their own (DDL of two runs at
    once must not mix with data). One commit, not one per statement: each DuckLake commit is a catalog
    transaction and a snapshot of its own, and a fresh warehouse's first publish ran some twenty of them
    (measured: about 65 ms each on SQLite). Two runs creating the same table at once: one commit
    conflicts and the publish is retried, finding the table there."""
    existing = tables(con)
    columns = _columns(con)  # one catalog query for every table, not one per write
    con.execute("BEGIN TRANSACTION")
    try:
        _create_or_extend(con, writes, existing, columns)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # the transaction is gone with the connection; the first error is the one to report


def _create_or_extend(
    con: duckdb.DuckDBPyConnection, writes: Sequence[Write], existing: set[str], columns: dict[str, set[str]]
) -> None:
    for write in writes:
        if write.table in existing:
            _add_new_columns(con, write, columns.setdefault(write.table, set()))
            continue
        shape = _relation(con, write.rows)
        con.register("_shape", shape)
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {identifier(write.table)} AS SELECT * FROM _shape LIMIT 0")
            # the declared partition; a test's partial frame of a registered table may lack its column
            partition = [c for c in write.partition if c in shape.columns]
            if partition:
                con.execute(
                    f"ALTER TABLE {identifier(write.table)} SET PARTITIONED BY "
                    f"({', '.join(identifier(c) for c in partition)})"
                )
        finally:
            con.unregister("_shape")
        existing.add(write.table)
        columns[write.table] = set(shape.columns)  # a second write of it in this publish adds nothing


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Every warehouse table's column names. One query: a metering publish has about fifteen writes,
    and each query of the DuckLake catalog costs tens of milliseconds (docs/performance.md)."""
    found: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", [ALIAS]
    ).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def _add_new_columns(con: duckdb.DuckDBPyConnection, write: Write, have: set[str] | None = None) -> None:
    """A table published before a column was added to it (e.g. meter_readings' provenance) gets the
    column, NULL in its older rows: the schema grows, nothing is rewritten. `have`: the table's columns
    when the caller already read them."""
    if have is None:
        have = _columns(con).get(write.table, set())
    shape = _relation(con, write.rows)
    for name, dtype in zip(shape.columns, shape.types):
        if name not in have:
            sql_type = "VARCHAR" if str(dtype).startswith("ENUM") else str(dtype)  # polars Enum: text in the lake
            con.execute(f"ALTER TABLE {identifier(write.table)} ADD COLUMN IF NOT EXISTS {identifier(name)} {sql_type}")
            have.add(name)  # a later write of the same table does not add it again


def _replace(con: duckdb.DuckDBPyConnection, write: Write, created: list[Path]) -> None:
    """Apply one write; the data files it places in the lake are added to `created` (removed again if
    the transaction does not commit)."""
    table = identifier(write.table)
    clause = " AND ".join(f"{table}.{identifier(k)} = ?" for k in write.where)
    if write.delete_keys is not None:
        if write.delete_keys.height:
            con.register("_keys", write.delete_keys.to_arrow())
            try:
                match = " AND ".join(
                    f"{table}.{identifier(c)} = _keys.{identifier(c)}" for c in write.delete_keys.columns
                )
                con.execute(
                    f"DELETE FROM {table} USING _keys WHERE {match}" + (f" AND {clause}" if clause else ""),
                    list(write.where.values()),
                )
            finally:
                con.unregister("_keys")
    elif write.where and not write.append:
        con.execute(f"DELETE FROM {table} WHERE {clause}", list(write.where.values()))
    if write.adopt:
        home = _adopt_path(con, write)
        if home is not None:
            # not referenced by any snapshot until the commit (a killed run leaves an orphan for maintenance).
            # The run's file stays where it is: a publish retried after a conflicting commit adopts it again
            created.append(home)
            try:
                if isinstance(write.rows, str):
                    _link_or_copy(write.rows, home)
                else:
                    write.rows.write_parquet(home, compression="zstd", compression_level=1)
            except OSError as exc:
                home.unlink(missing_ok=True)
                raise environment_fault(exc, home.parent, f"write {write.table}'s data file") or exc
            con.execute(f"CALL ducklake_add_data_files({literal(ALIAS)}, ?, ?)", [write.table, str(home)])
            return
    con.register("_incoming", _relation(con, write.rows))
    try:
        con.execute(f"INSERT INTO {identifier(write.table)} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def _link_or_copy(source: str, home: Path) -> None:
    """A hard link on one disk (no bytes copied), a copy across disks."""
    try:
        os.link(source, home)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, home)


def _adopt_path(con: duckdb.DuckDBPyConnection, write: Write) -> Path | None:
    """Where an adopted file goes: the table's folder under a local data path, in its partition's
    folder named as DuckLake names them; None when the lake is not a local disk."""
    stored = data_path(con)
    root = lake.location(stored) if stored else None
    if root is None or not lake.is_local(root):
        return None
    folder = Path(root) / "main" / write.table
    for column in write.partition:
        folder = folder / f"{column}={quote(str(write.where.get(column, '')), safe='')}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"ducklake-{uuid.uuid4()}.parquet"  # named as DuckLake names its own


@contextmanager
def transaction(
    where: Where = None,
    *,
    lake_root: str | os.PathLike[str] | None = None,
    what: str = "publish to the warehouse",
    before: Any = None,
    after: Any = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection inside BEGIN ... COMMIT; ROLLBACK on error. A failure of the machine becomes
    an EnvironmentFault (a failed ROLLBACK never hides the first error). `before(con)` runs on the
    same connection first, in its own commit (creating missing tables: DDL of two runs at once must
    not mix with data); `after(con)` runs after the COMMIT, on the same connection."""
    s = settings(where, lake_root)
    con = connect(s)
    try:
        if before is not None:
            try:
                before(con)
            except duckdb.Error as exc:
                if not _is_conflict(exc):
                    raise fault_of(exc, s, "create the warehouse tables") from exc
                raise
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            con.execute("COMMIT")
            if after is not None:
                after(con)
        except BaseException as exc:
            _rollback(con)
            if isinstance(exc, duckdb.Error) and not _is_conflict(exc):
                raise fault_of(exc, s, what) from exc
            raise
    finally:
        con.close()


def publish(
    writes: Sequence[Write],
    where: Where = None,
    *,
    lake_root: str | os.PathLike[str] | None = None,
    then: Any = None,
    after: Any = None,
) -> Any:
    """Apply every write in ONE transaction; `then(con)` runs last inside it (the run's manifest row)
    and its result is returned; `after(con, result)` runs once committed. `where`: a run's settings or a
    command's --warehouse. Two writers at once: DuckLake detects a conflicting commit, and the whole
    transaction is retried (one wins whole, then the other replaces it whole). A catalog locked
    by another process is waited for MAYORISTA_LOCK_WAIT_S in all, over every attempt."""
    with lock_budget():
        return _publish(writes, settings(where, lake_root), then=then, after=after)


def _publish(
    writes: Sequence[Write],
    s: config.Settings,
    *,
    then: Any,
    after: Any,
) -> Any:
    attempt = 0  # conflicting commits; a commit refused by a locked catalog is retried until the wait ends
    while True:
        created: list[Path] = []  # data files this attempt placed in the lake
        committed: list[bool] = []

        def on_commit(con: duckdb.DuckDBPyConnection, result: list[Any]) -> None:
            committed.append(True)
            if after is not None:
                after(con, result[0])

        try:
            result: list[Any] = [None]
            with transaction(
                s,
                before=lambda con: _ensure_tables(con, writes),
                after=lambda con: on_commit(con, result),
            ) as con:
                for write in writes:
                    _replace(con, write, created)
                result[0] = then(con) if then else None
            return result[0]
        except BaseException as exc:
            if not committed and not getattr(exc, "commit_unknown", False):
                # no snapshot refers to them: remove the files this attempt placed (when the catalog's
                # server died during the COMMIT it may have committed: they stay, and maintenance deletes
                # them later if no snapshot refers to them)
                for path in created:
                    path.unlink(missing_ok=True)
            if not isinstance(exc, duckdb.Error):
                raise
            if "database is locked" in str(exc).lower():
                if time.monotonic() > (_LOCK_DEADLINE.get() or (0.0, 0.0))[1]:
                    raise _locked_fault(s.warehouse) from exc
                logger.warning("the warehouse %s is locked by another process; waiting", describe(s))
                time.sleep(1.0)
                continue
            if not _is_conflict(exc) or attempt == _CONFLICT_RETRIES - 1:
                raise fault_of(exc, s, "publish to the warehouse") from exc
            wait = 0.2 * 2**attempt
            attempt += 1
            logger.warning(
                "publish conflicted with another commit (%s); retrying in %.1f s", str(exc).splitlines()[0], wait
            )
            time.sleep(wait)


# --- inside a publish's transaction: the run's own bookkeeping ------------------------------------------


def next_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    """The snapshot this transaction's commit will create: DuckLake numbers commits consecutively (another
    writer's commit may take the number first: `committed_snapshot` says which one it really was)."""
    return int(con.execute(f"SELECT max(snapshot_id) + 1 FROM ducklake_snapshots({literal(ALIAS)})").fetchone()[0])


def label_commit(con: duckdb.DuckDBPyConnection, message: str, extra_info: str) -> None:
    """The commit's message and extra info (a run's id: `committed_snapshot` finds the commit by it)."""
    con.execute(f"CALL {ALIAS}.set_commit_message('mayorista', ?, extra_info => ?)", [message, extra_info])


def committed_snapshot(con: duckdb.DuckDBPyConnection, extra_info: str) -> int | None:
    """The snapshot of the commit labelled with `extra_info` (None when there is none)."""
    row = con.execute(
        f"SELECT snapshot_id FROM ducklake_snapshots({literal(ALIAS)}) WHERE commit_extra_info = ?", [extra_info]
    ).fetchone()
    return int(row[0]) if row else None


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, *, new_by: str | None = None) -> None:
    """Add `rows` to `table` inside the open transaction, creating it first if it does not exist (a run's
    manifest row: the publish creates every other table before its transaction). `new_by`: only the
    rows whose value in that column the table does not hold yet (a record must not land twice)."""
    con.register("_rows", rows.to_arrow())
    try:
        if table not in tables(con):
            con.execute(f"CREATE TABLE IF NOT EXISTS {identifier(table)} AS SELECT * FROM _rows LIMIT 0")
        only_new = (
            f" WHERE {identifier(new_by)} NOT IN (SELECT {identifier(new_by)} FROM {identifier(table)})"
            if new_by
            else ""
        )
        con.execute(f"INSERT INTO {identifier(table)} BY NAME SELECT * FROM _rows{only_new}")
    finally:
        con.unregister("_rows")


def update(con: duckdb.DuckDBPyConnection, table: str, values: dict[str, Any], where: dict[str, Any]) -> None:
    """Set `values` in the rows of `table` matching `where` (column = value), values bound."""
    assignments = ", ".join(f"{identifier(c)} = ?" for c in values)
    match = " AND ".join(f"{identifier(c)} = ?" for c in where)
    con.execute(f"UPDATE {identifier(table)} SET {assignments} WHERE {match}", [*values.values(), *where.values()])
