"""The warehouse: a DuckLake (a SQL catalog plus Parquet data files under the lake root).

- The catalog is a SQLite file by default (`data/warehouse.sqlite`, embedded) or a PostgreSQL database
  (`postgresql://user:pass@host:port/db`, the production profile). It remembers where its data files
  live, so a reader needs only the catalog.
- Writers and readers work at once: an analyst's open session never blocks a publish, and sees the new
  rows on its next statement. Every commit is a snapshot; any table can be read as of one
  (`FROM t AT (VERSION => n)`), which is how a published report is reproduced later.
- A publication is ONE transaction over all of a run's tables (delete the period's rows, insert the
  new ones), so a failed or killed run leaves the previous snapshot as it was.

The extensions come from Python wheels (duckdb-extension-ducklake, -sqlite, -postgres) and are
installed from those files: nothing is downloaded at run time (`LOAD ducklake` alone would try)."""

from __future__ import annotations

import contextvars
import errno
import importlib.util
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlparse

import duckdb
import polars as pl

from pipelines import config, lake
from pipelines.errors import EnvironmentFault, MayoristaError, environment_fault

logger = logging.getLogger(__name__)

ALIAS = "wh"  # the attached catalog's name in every connection
# (wheel package, file name inside it, name LOAD knows it by)
_EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake", "ducklake"),
    "sqlite": ("duckdb_extension_sqlite", "sqlite", "sqlite_scanner"),
    "postgres": ("duckdb_extension_postgres", "postgres", "postgres_scanner"),
}
_CONFLICT_RETRIES = 6
# when the current command stops waiting for a locked catalog (time.monotonic()): one budget for all
# the attaches of a publish and its retries, so the wait is MAYORISTA_LOCK_WAIT_S in all, not per attach
_LOCK_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "lock_deadline", default=None
)
_FULL_BELOW_BYTES = 1 << 20  # a disk with less free space than this is taken as full


class _Locked(Exception):
    """The catalog is locked, or being created, by another process (retried by `attach`)."""


class CatalogLocked(EnvironmentFault):
    """The catalog stayed locked by another process for the whole wait (MAYORISTA_LOCK_WAIT_S)."""


class NoWarehouse(MayoristaError):
    """A reader found no warehouse: nothing has been published there yet."""


Rows = pl.DataFrame | str  # a frame, or a local Parquet path/glob read by DuckDB directly


def literal(text: str) -> str:
    """A SQL string literal: data never becomes SQL text unescaped."""
    return "'" + str(text).replace("'", "''") + "'"


def identifier(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def is_postgres(warehouse: str) -> bool:
    return urlparse(warehouse).scheme.split("+")[0] in ("postgresql", "postgres")


def describe(warehouse: str | os.PathLike[str] | None = None) -> str:
    """The catalog as a person would name it (a PostgreSQL URI without its password)."""
    text = str(warehouse or config.warehouse())
    if is_postgres(text):
        parsed = urlparse(text)
        return parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[-1], scheme="postgresql").geturl()
    return text


def _install(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    package, file_name, loaded_as = _EXTENSIONS[kind]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise EnvironmentFault(
            f"the DuckDB extension {kind!r} is not installed: install the package "
            f"{package.replace('_', '-')}=={duckdb.__version__} (it is in the project's lock file: `uv sync`)"
        )
    path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / f"{file_name}.duckdb_extension"
    if not path.exists():
        raise EnvironmentFault(
            f"the package {package.replace('_', '-')} has no extension for DuckDB {duckdb.__version__} "
            f"({path} is missing): install {package.replace('_', '-')}=={duckdb.__version__}"
        )
    installed = con.execute(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = ?", [loaded_as]
    ).fetchone()
    if not (installed and installed[0]):
        con.execute(f"INSTALL {literal(str(path))}")
    con.execute(f"LOAD {loaded_as}")


def _catalog_uri(warehouse: str) -> tuple[str, str]:
    """(ATTACH string, back end) for a catalog path or PostgreSQL URI. A PostgreSQL catalog's host,
    port, database, user and password go in a secret (`_postgres_secret`), never in the ATTACH string:
    DuckDB shows that string to any query (`duckdb_databases()`, `duckdb_settings()`), and shows a
    secret's password only as `redacted`. The URI's query parameters (sslmode...) stay in the string."""
    if is_postgres(warehouse):
        params = " ".join(f"{key}={_libpq_value(value)}" for key, value in parse_qsl(urlparse(warehouse).query))
        return "ducklake:postgres:" + params, "postgres"
    return f"ducklake:sqlite:{Path(warehouse).resolve()}", "sqlite"


def _libpq_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _secret_name(alias: str) -> str:
    return f"{alias}_catalog"


def _postgres_secret(con: duckdb.DuckDBPyConnection, warehouse: str, alias: str) -> None:
    """The PostgreSQL catalog's connection as a temporary DuckDB secret (in memory, this connection
    only), named for the alias: the ATTACH names it (META_SECRET) instead of carrying the password."""
    parsed = urlparse(warehouse)
    fields = {
        "HOST": parsed.hostname,
        "PORT": str(parsed.port) if parsed.port else None,
        "DATABASE": unquote(parsed.path.lstrip("/")) or None,
        "USER": unquote(parsed.username) if parsed.username else None,
        "PASSWORD": unquote(parsed.password) if parsed.password else None,
    }
    options = "".join(f", {key} {literal(value)}" for key, value in fields.items() if value)
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {identifier(_secret_name(alias))} (TYPE postgres{options})")


@contextmanager
def lock_budget(seconds: float | None = None) -> Iterator[None]:
    """Within it, every attach shares one wait for a locked catalog (MAYORISTA_LOCK_WAIT_S in all, or
    `seconds`: 0 is one attempt, no waiting)."""
    if seconds is None and _LOCK_DEADLINE.get() is not None:  # an outer budget already runs
        yield
        return
    now = time.monotonic()
    token = _LOCK_DEADLINE.set((now, now + (config.lock_wait_s() if seconds is None else seconds)))
    try:
        yield
    finally:
        _LOCK_DEADLINE.reset(token)


def _lock_holders(target: str) -> str:
    """What holds the SQLite catalog's lock, from the kernel's lock table (/proc/locks): 'process 123
    (python -m pipelines.cli sql ...)'; a generic description where that cannot be known."""
    generic = (
        "another process: a run publishing, `mayorista maintain`, or a program with a transaction open "
        "on the catalog file (a SQLite browser, a script)"
    )
    if is_postgres(target):
        return generic
    try:
        inode = Path(target).stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return generic
    pids = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[5].rsplit(":", 1)[-1] == str(inode) and fields[4].isdigit():
            pids.add(int(fields[4]))
    pids.discard(os.getpid())
    holders = []
    for pid in sorted(pids):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = "?"
        holders.append(f"process {pid} ({command[:120]})")
    return ", ".join(holders) if holders else generic


def _locked_fault(target: str) -> CatalogLocked:
    started = (_LOCK_DEADLINE.get() or (time.monotonic(), 0.0))[0]
    return CatalogLocked(
        f"could not open the warehouse {describe(target)}: it is locked by {_lock_holders(target)}, and stayed "
        f"locked while this command waited ({time.monotonic() - started:.0f} s; MAYORISTA_LOCK_WAIT_S="
        f"{config.lock_wait_s():g}). Nothing was published; wait for that process to finish (or stop it) and run again."
    )


def _data_path(lake_root: str | os.PathLike[str] | None) -> str:
    root = config.lake_root(lake_root)
    text = str(Path(root).resolve()) if lake.is_local(root) else str(root)
    return text.rstrip("/") + "/"


def connect(
    warehouse: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    lake_root: str | os.PathLike[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the warehouse attached as `wh` and in use.

    A writer creates a missing SQLite catalog (with its data path at the lake root); a reader of a
    missing one fails with a clear message. `lake_root` (else MAYORISTA_LAKE, else data/lake) is where
    new data files go; it must be where the catalog keeps them."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        attach(con, warehouse, ALIAS, read_only=read_only, lake_root=lake_root)
        con.execute(f"USE {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def attach(
    con: duckdb.DuckDBPyConnection,
    warehouse: str | os.PathLike[str] | None,
    alias: str,
    *,
    read_only: bool = False,
    lake_root: str | os.PathLike[str] | None = None,
) -> None:
    """Attach a warehouse to an open connection under `alias` (e.g. to compare two warehouses)."""
    target = str(warehouse or config.warehouse())
    uri, backend = _catalog_uri(target)
    if backend == "sqlite":
        path = Path(target)
        if not path.exists():
            if read_only:
                raise NoWarehouse(
                    f"no warehouse at {path}: nothing has been published there yet "
                    "(run a pipeline first, or give --warehouse)"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise environment_fault(exc, path.parent, "create the warehouse folder") or exc
    _install(con, "ducklake")
    _install(con, backend)
    if backend == "postgres":
        _postgres_secret(con, target, alias)
    _register_lake(con, str(config.lake_root(lake_root)))
    with lock_budget():  # this attach's own wait, unless a publish's budget already runs
        _attach_waiting(con, uri, target, alias, read_only=read_only, lake_root=lake_root)
    stored = con.execute(
        f"SELECT value FROM ducklake_options({literal(alias)}) WHERE option_name = 'data_path'"
    ).fetchone()
    if stored:
        _register_lake(con, stored[0])


def _attach_waiting(
    con: duckdb.DuckDBPyConnection,
    uri: str,
    target: str,
    alias: str,
    *,
    read_only: bool,
    lake_root: str | os.PathLike[str] | None,
) -> None:
    """`_attach`, again every second while another process holds the catalog, until the budget ends."""
    deadline = _LOCK_DEADLINE.get()[1]
    while True:
        try:
            _attach(
                con,
                uri,
                target,
                alias,
                read_only=read_only,
                data_path=_data_path(lake_root),
                explicit_lake=bool(lake_root or os.environ.get("MAYORISTA_LAKE")),
            )
            break
        except _Locked:
            if time.monotonic() > deadline:
                raise _locked_fault(target) from None
            logger.warning("the warehouse %s is locked by another process; waiting", describe(target))
            time.sleep(1.0)


def _register_lake(con: duckdb.DuckDBPyConnection, root: str) -> None:
    """DuckDB reads and writes the lake through its own fsspec filesystem when it is not a local disk
    (memory:// in tests, s3://... with that filesystem installed): the same credentials as the rest."""
    where = lake.location(root)
    if not lake.is_local(where) and not con.filesystem_is_registered(
        where.protocol if isinstance(where.protocol, str) else where.protocol[0]
    ):
        con.register_filesystem(where.fs)


def _attach(
    con: duckdb.DuckDBPyConnection,
    uri: str,
    target: str,
    alias: str,
    *,
    read_only: bool,
    data_path: str,
    explicit_lake: bool,
) -> None:
    _prepare_catalog(con, target, read_only=read_only, data_path=data_path)
    # every row goes to Parquet under the lake (no rows kept inside the catalog): the data files are the lake
    options = ["DATA_INLINING_ROW_LIMIT 0"] + (["READ_ONLY"] if read_only else [f"DATA_PATH {literal(data_path)}"])
    if uri.startswith("ducklake:postgres:"):
        options.append(f"META_SECRET {literal(_secret_name(alias))}")
    try:
        con.execute(f"ATTACH {literal(uri)} AS {identifier(alias)} ({', '.join(options)})")
    except duckdb.Error as exc:
        text = _redact(str(exc), target)
        if "does not match existing data path" in text:
            if explicit_lake:
                raise MayoristaError(
                    f"the warehouse {describe(target)} keeps its data files under another lake than {data_path} "
                    f"({text.splitlines()[0]}); give the lake it was created with, or a new --warehouse"
                ) from None
            kept = [o for o in options if not o.startswith("DATA_PATH")]
            con.execute(f"ATTACH {literal(uri)} AS {identifier(alias)} ({', '.join(kept)})")  # its own lake
            return
        if "database is locked" in text:  # another process holds the SQLite catalog: waited for by attach()
            raise _Locked() from None
        if "Failed to initialize DuckLake" in text and ("duplicate key" in text or "already exists" in text):
            # another run created the same new catalog at the same moment: it exists now, attach again
            raise _Locked() from None
        if "creating a new DuckLake is explicitly disabled" in text:
            raise NoWarehouse(
                f"no warehouse in {describe(target)}: nothing has been published there yet "
                "(run a pipeline first, or give --warehouse)"
            ) from None
        if "Unable to connect" in text:  # the catalog's server: down, wrong database, credentials
            reason = text.rsplit("failed:", 1)[-1].strip().splitlines()[0]  # libpq adds a tab-indented hint
            raise EnvironmentFault(
                f"could not connect to the warehouse catalog {describe(target)}: {reason}. "
                "Nothing was published; check the server and MAYORISTA_WAREHOUSE / --warehouse."
            ) from None
        if "not a database" in text or "Failed to probe DuckLake" in text or "ducklake_metadata" in text:
            raise MayoristaError(
                f"{describe(target)} is not a warehouse catalog (a DuckLake in SQLite or "
                f"PostgreSQL): {text.splitlines()[0]}"
            ) from None
        fault = environment_fault(exc, describe(target), "open the warehouse")
        if fault:
            raise fault from None
        # e.g. PostgreSQL refusing the connection: the catalog's own words, without its password
        raise MayoristaError(f"could not open the warehouse {describe(target)}: {text.splitlines()[0]}") from None


def _prepare_catalog(con: duckdb.DuckDBPyConnection, target: str, *, read_only: bool, data_path: str) -> None:
    """Before DuckDB attaches a SQLite catalog: a path with no file gets a new catalog (a writer only);
    an existing file must already be a DuckLake catalog. DuckLake itself would write its tables into any
    SQLite database it is given (another application's, Airflow's own `airflow.db`, a zero-byte file),
    so anything else is refused untouched: it is only opened read-only here."""
    if is_postgres(target):
        return
    path = Path(target)
    if not path.exists():
        if not read_only:
            _create_catalog(con, path, data_path)
        return  # a reader: attach() said there is no warehouse
    if not is_catalog_file(path):
        raise MayoristaError(
            f"{describe(target)} is not a warehouse catalog (a DuckLake in SQLite or PostgreSQL): it exists but "
            "holds no DuckLake catalog; it was left untouched. Give the path of the warehouse, or a path where "
            "no file exists yet to create a new one."
        )


def is_catalog_file(path: Path) -> bool:
    """Whether a file is a DuckLake catalog in SQLite (it has DuckLake's `ducklake_metadata` table). The
    file is only read: a file that is not an SQLite database at all (or has zero bytes) is told by its
    header without SQLite opening it; a WAL-mode database (DuckLake never makes one, Airflow's may be)
    is read as immutable, so not even its -wal/-shm files appear. A lock held by another process is
    waited for by attach()."""
    if path.is_dir():
        return False
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise environment_fault(exc, path, "read the warehouse catalog") or exc
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        return False
    # rollback-journal databases read normally first (a hot journal left by a killed commit makes that
    # fail: the main file, as immutable, still shows the tables); WAL databases only as immutable
    for immutable in (True,) if header[18] == 2 else (False, True):
        try:
            con = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}", uri=True, timeout=1.0
            )
            try:
                found = con.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ducklake_metadata'"
                ).fetchone()
            finally:
                con.close()
            return found is not None
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Locked() from None
        except sqlite3.DatabaseError:
            pass
    return False


def _create_catalog(con: duckdb.DuckDBPyConnection, path: Path, data_path: str) -> None:
    """Create a new catalog under a temporary name, then link it into place only if no file exists
    there yet (atomic): no process ever sees a half-created catalog, and of two runs creating the same
    catalog at once, one catalog wins and both use it."""
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.creating")
    alias = f"_new_{uuid.uuid4().hex}"
    try:
        try:
            con.execute(
                f"ATTACH {literal('ducklake:sqlite:' + str(staging.resolve()))} AS {identifier(alias)} "
                f"(DATA_INLINING_ROW_LIMIT 0, DATA_PATH {literal(data_path)})"
            )
            con.execute(f"DETACH {identifier(alias)}")
        except duckdb.Error as exc:
            raise environment_fault(exc, path.parent, "create the warehouse catalog") or exc
        try:
            os.link(staging, path)
        except FileExistsError:
            pass  # another run created it a moment ago: that one is used
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise environment_fault(exc, path.parent, "create the warehouse catalog") or exc
            if not path.exists():  # no hard links on this filesystem: a rename (not atomic against a race)
                os.replace(staging, path)
    finally:
        for leftover in (
            staging,
            staging.with_name(staging.name + "-journal"),
            staging.with_name(staging.name + "-wal"),
        ):
            leftover.unlink(missing_ok=True)


def _redact(text: str, target: str) -> str:
    """Error text without the catalog's password (DuckDB quotes the whole connection string)."""
    password = urlparse(target).password if is_postgres(target) else None
    return text.replace(password, "***") if password else text


@dataclass
class Write:
    """Replace the rows of `table` that match `where` (column = value) with `rows`; `partition` is the
    table's partition column (its period) when the table is created.

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
    partition: Sequence[str] = ()
    adopt: bool = False
    delete_keys: pl.DataFrame | None = None
    append: bool = False


def _relation(con: duckdb.DuckDBPyConnection, rows: Rows) -> duckdb.DuckDBPyRelation:
    if isinstance(rows, str):
        return con.read_parquet(rows)
    return con.from_arrow(rows.to_arrow())


def _ensure_tables(con: duckdb.DuckDBPyConnection, writes: Sequence[Write]) -> None:
    """Create missing tables (in their own commit: DDL of two runs at once must not mix with data)."""
    existing = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [ALIAS]
        ).fetchall()
    }
    for write in writes:
        if write.table in existing:
            _add_new_columns(con, write)
            continue
        con.register("_shape", _relation(con, write.rows))
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {identifier(write.table)} AS SELECT * FROM _shape LIMIT 0")
            if write.partition:
                con.execute(
                    f"ALTER TABLE {identifier(write.table)} SET PARTITIONED BY "
                    f"({', '.join(identifier(c) for c in write.partition)})"
                )
        finally:
            con.unregister("_shape")
        existing.add(write.table)


def _add_new_columns(con: duckdb.DuckDBPyConnection, write: Write) -> None:
    """A table published before a column was added to it (e.g. meter_readings' provenance) gets the
    column, NULL in its older rows: the schema grows, nothing is rewritten."""
    have = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_name = ?",
            [ALIAS, write.table],
        ).fetchall()
    }
    shape = _relation(con, write.rows)
    for name, dtype in zip(shape.columns, shape.types):
        if name not in have:
            sql_type = "VARCHAR" if str(dtype).startswith("ENUM") else str(dtype)  # polars Enum: text in the lake
            con.execute(f"ALTER TABLE {identifier(write.table)} ADD COLUMN IF NOT EXISTS {identifier(name)} {sql_type}")


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
    row = con.execute(
        f"SELECT value FROM ducklake_options({literal(ALIAS)}) WHERE option_name = 'data_path'"
    ).fetchone()
    root = lake.location(row[0]) if row else None
    if root is None or not lake.is_local(root):
        return None
    folder = Path(root) / "main" / write.table
    for column in write.partition:
        folder = folder / f"{column}={quote(str(write.where.get(column, '')), safe='')}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"ducklake-{uuid.uuid4()}.parquet"  # named as DuckLake names its own


def _is_conflict(exc: BaseException) -> bool:
    """Another writer got there first (a conflicting commit, a table it just created, the SQLite
    catalog busy past its timeout): the whole transaction can simply be tried again. Other failed
    commits (a full or read-only disk under the catalog) are not conflicts, whatever their type."""
    text = str(exc).lower()
    return "conflict" in text or "already exists" in text or "database is locked" in text


def _storage_fault(
    warehouse: str | os.PathLike[str] | None, lake_root: str | os.PathLike[str] | None, what: str
) -> EnvironmentFault | None:
    """When an error does not say what failed (a failed COMMIT of the SQLite catalog can surface only as
    'cannot rollback - no transaction is active'), look at the storage the warehouse writes to."""
    target = str(warehouse or config.warehouse())
    places = [] if is_postgres(target) else [Path(target).resolve().parent]
    root = config.lake_root(lake_root)
    if lake.is_local(root):
        places.append(Path(root))
    for place in places:
        while not place.exists() and place != place.parent:
            place = place.parent
        try:
            stat = os.statvfs(place)
        except OSError:
            continue
        if stat.f_flag & os.ST_RDONLY:
            return environment_fault(OSError(errno.EROFS, "Read-only file system"), place, what)
        if stat.f_bavail * stat.f_frsize < _FULL_BELOW_BYTES:
            return environment_fault(OSError(errno.ENOSPC, "No space left on device"), place, what)
    return None


# What the PostgreSQL client says when the catalog's server goes away (stopped, crashed, restarting,
# unreachable), as DuckDB's postgres extension passes it on inside Binder, IO, Transaction or plain
# errors (whatever the statement was doing), with the reason each stands for in our message. Never
# the error's own text: it quotes the SQL and sometimes the whole connection string, password included.
_CATALOG_LOST = (
    ("server closed the connection", "the server closed the connection unexpectedly"),
    ("terminating connection", "the server ended the connection"),
    ("the database system is shutting down", "the server is shutting down"),
    ("the database system is starting up", "the server is starting up"),
    ("the database system is in recovery mode", "the server is recovering from a crash"),
    ("no connection to the server", "the connection to the server is gone"),
    ("ssl connection has been closed", "the server closed the connection unexpectedly"),
    ("connection refused", "connection refused (is the server running?)"),
    ("could not connect to server", "could not connect to the server"),
    ("unable to connect to postgres", "could not connect to the server"),
    ("connection timed out", "the connection timed out"),
    ("could not translate host name", "the server's host name does not resolve"),
)


def catalog_lost(exc: BaseException, warehouse: str | os.PathLike[str] | None = None) -> EnvironmentFault | None:
    """An EnvironmentFault in one sentence when `exc` says the PostgreSQL catalog's server went away
    in the middle of a read or a publish, else None. The transaction died with the connection, so
    nothing was published, except when the connection broke during the COMMIT itself: PostgreSQL may
    or may not have committed, and the sentence says so."""
    target = str(warehouse or config.warehouse())
    if not is_postgres(target):
        return None
    text = str(exc).lower()
    reason = next((why for words, why in _CATALOG_LOST if words in text), None)
    if reason is None:
        return None
    commit_unknown = "failed to commit" in text or 'query "commit"' in text
    if commit_unknown:
        outcome = (
            "the connection broke during the commit, so the run may or may not have been published: "
            "`mayorista history` shows which once the server is back"
        )
    else:
        outcome = "nothing was published"
    fault = EnvironmentFault(
        f"lost the connection to the warehouse catalog {describe(target)}: {reason}; {outcome}. "
        "Check the PostgreSQL server and run again."
    )
    fault.commit_unknown = commit_unknown  # publish() then keeps the data files a committed snapshot may use
    return fault


def _fault_of(
    exc: BaseException, warehouse: str | os.PathLike[str] | None, lake_root: str | os.PathLike[str] | None, what: str
) -> BaseException:
    """The error to report for a failed warehouse operation: a failure of the machine as an
    EnvironmentFault (from the error's own words, else from the state of the storage), else `exc`."""
    lost = catalog_lost(exc, warehouse)
    if lost is not None:
        return lost
    by_words = environment_fault(exc, describe(warehouse), what)
    if by_words is None or "disk is full" in str(by_words) or "read-only" in str(by_words):
        # the storage names the place that is full or read-only: the catalog's disk or the lake's
        return _storage_fault(warehouse, lake_root, what) or by_words or exc
    return by_words


@contextmanager
def transaction(
    warehouse: str | os.PathLike[str] | None = None,
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
    con = connect(warehouse, lake_root=lake_root)
    try:
        if before is not None:
            try:
                before(con)
            except duckdb.Error as exc:
                if not _is_conflict(exc):
                    raise _fault_of(exc, warehouse, lake_root, "create the warehouse tables") from exc
                raise
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
            con.execute("COMMIT")
            if after is not None:
                after(con)
        except BaseException as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the transaction is gone with the connection; the first error is the one to report
            if isinstance(exc, duckdb.Error) and not _is_conflict(exc):
                raise _fault_of(exc, warehouse, lake_root, what) from exc
            raise
    finally:
        con.close()


def publish(
    writes: Sequence[Write],
    warehouse: str | os.PathLike[str] | None = None,
    *,
    lake_root: str | os.PathLike[str] | None = None,
    then: Any = None,
    after: Any = None,
) -> Any:
    """Apply every write in ONE transaction; `then(con)` runs last inside it (the run's manifest row)
    and its result is returned; `after(con, result)` runs once committed. Two writers at once: DuckLake detects a conflicting commit, and the
    whole transaction is retried (one wins whole, then the other replaces it whole). A catalog locked
    by another process is waited for MAYORISTA_LOCK_WAIT_S in all, over every attempt."""
    with lock_budget():
        return _publish(writes, warehouse, lake_root=lake_root, then=then, after=after)


def _publish(
    writes: Sequence[Write],
    warehouse: str | os.PathLike[str] | None,
    *,
    lake_root: str | os.PathLike[str] | None,
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
                warehouse,
                lake_root=lake_root,
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
                    raise _locked_fault(str(warehouse or config.warehouse())) from exc
                logger.warning("the warehouse %s is locked by another process; waiting", describe(warehouse))
                time.sleep(1.0)
                continue
            if not _is_conflict(exc) or attempt == _CONFLICT_RETRIES - 1:
                raise _fault_of(exc, warehouse, lake_root, "publish to the warehouse") from exc
            wait = 0.2 * 2**attempt
            attempt += 1
            logger.warning(
                "publish conflicted with another commit (%s); retrying in %.1f s", str(exc).splitlines()[0], wait
            )
            time.sleep(wait)


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [ALIAS]
        ).fetchall()
    }


def warm(warehouse: str | os.PathLike[str] | None = None) -> threading.Thread:
    """Load the extensions in the background while a run reads and validates: the first load in a
    process takes about a second, later connections reuse it. Nothing is attached here."""
    backend = _catalog_uri(str(warehouse or config.warehouse()))[1]

    def load() -> None:
        try:
            con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
            try:
                _install(con, "ducklake")
                _install(con, backend)
            finally:
                con.close()
        except Exception as exc:  # noqa: BLE001 - the publish reports it, with its context
            logger.debug("loading the DuckDB extensions in the background failed: %s", exc)

    thread = threading.Thread(target=load, name="warehouse-warm", daemon=True)
    thread.start()
    return thread


def exists(warehouse: str | os.PathLike[str] | None = None) -> bool:
    """Whether a warehouse has been created there (by a first publish)."""
    target = str(warehouse or config.warehouse())
    if not is_postgres(target):
        return Path(target).exists()
    try:
        connect(target, read_only=True).close()
    except NoWarehouse:
        return False
    return True


def table_names(warehouse: str | os.PathLike[str] | None = None) -> set[str]:
    con = connect(warehouse, read_only=True)
    try:
        return tables(con)
    finally:
        con.close()


def query(sql: str, warehouse: str | os.PathLike[str] | None = None, params: list[Any] | None = None) -> pl.DataFrame:
    """Read-only query returning a polars frame (summaries, reports, tests)."""
    con = connect(warehouse, read_only=True)
    try:
        return con.sql(sql, params=params or None).pl()
    finally:
        con.close()
