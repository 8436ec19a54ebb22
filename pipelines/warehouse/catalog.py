"""The catalog: which warehouse a command means, the DuckDB extensions, attaching a DuckLake catalog
(SQLite or PostgreSQL) read-only or for writing, waiting for a catalog another process holds, and
telling a failure of the machine or of the catalog's server from anything else.

Settings (`--warehouse`, `--lake`, then the environment, then the defaults) are resolved by
`settings()` here, once per call from outside a run; a run resolves them once (`config.Settings`) and
passes them down, so nothing here reads the environment."""

from __future__ import annotations

import contextvars
import errno
import importlib.util
import logging
import os
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

import duckdb

from pipelines import config, lake, objectstore
from pipelines.errors import EnvironmentFault, MayoristaError, environment_fault

logger = logging.getLogger(__name__)

ALIAS = "wh"  # the attached catalog's name in every connection: only the warehouse package names it
# where a warehouse is: a run's resolved settings, or a command's --warehouse (a path or URI, None: the default)
Where = config.Settings | str | os.PathLike[str] | None
# (wheel package, file name inside it, name LOAD knows it by)
_EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake", "ducklake"),
    "sqlite": ("duckdb_extension_sqlite", "sqlite", "sqlite_scanner"),
    "postgres": ("duckdb_extension_postgres", "postgres", "postgres_scanner"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs", "httpfs"),  # the lake or the landing zone on s3://
}
# when the current command stops waiting for a locked catalog (time.monotonic()): one budget for all
# the attaches of a publish and its retries, so the wait is MAYORISTA_LOCK_WAIT_S in all, not per attach
_LOCK_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "lock_deadline", default=None
)


class _Locked(Exception):
    """The catalog is locked, or being created, by another process (retried by `attach`)."""


class CatalogLocked(EnvironmentFault):
    """The catalog stayed locked by another process for the whole wait (MAYORISTA_LOCK_WAIT_S)."""


class NoWarehouse(MayoristaError):
    """A reader found no warehouse: nothing has been published there yet."""


def settings(where: Where = None, lake_root: str | os.PathLike[str] | None = None) -> config.Settings:
    """The settings as given (a run's), else resolved from a command's --warehouse and --lake: the one
    place the warehouse package resolves them."""
    if isinstance(where, config.Settings):
        return where if lake_root is None else where.with_lake(lake_root)
    return config.Settings.resolve(warehouse=where, lake=lake_root)


def literal(text: str) -> str:
    """A SQL string literal: data never becomes SQL text unescaped."""
    return "'" + str(text).replace("'", "''") + "'"


def identifier(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def is_postgres(warehouse: str) -> bool:
    return urlparse(warehouse).scheme.split("+")[0] in ("postgresql", "postgres")


def describe(where: Where = None) -> str:
    """The catalog as a person would name it (a PostgreSQL URI without its password)."""
    text = settings(where).warehouse
    if is_postgres(text):
        parsed = urlparse(text)
        return parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[-1], scheme="postgresql").geturl()
    return text


def duckdb_config() -> dict[str, object]:
    """The settings every DuckDB connection of the warehouse opens with: nothing installed or loaded
    on its own (no network), and the extensions taken from the environment's own folder when it has one.

    DuckDB checks an extension's signature on every LOAD: it hashes the whole file (35 MB for DuckLake),
    0.08 s of CPU for each extension of each connection, 0.16 s a connection, paid by every run, query
    and report many times over. The files it would check are copies of the wheels' own, which uv installed
    into this environment checked against the lock file's hashes, and which sit next to DuckDB's own
    native module (never signature-checked either): so connections load them from a folder inside the
    environment (`<environment>/share/mayorista/duckdb-extensions`, written only by `_install`, from the
    wheels) without a second check. Where the environment cannot be written (a read-only image that was
    never run once), the extensions go to DuckDB's default folder in the home directory, and every LOAD
    is checked there as before. An analyst's session still loads nothing: `analyst.lock_down` turns off
    external access and locks the settings."""
    return dict(_config())


@cache
def _config() -> tuple[tuple[str, object], ...]:
    settings_ = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    folder = _environment_extensions()
    if folder is not None:
        settings_ |= {"extension_directory": str(folder), "allow_unsigned_extensions": True}
    return tuple(settings_.items())


def _environment_extensions() -> Path | None:
    """The environment's extension folder, made if missing; None where it cannot be, or outside a
    virtual environment (the system's Python is not this project's to write into)."""
    if sys.prefix == sys.base_prefix:
        return None
    folder = Path(sys.prefix) / "share" / "mayorista" / "duckdb-extensions"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK | os.X_OK) else None


def _install(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """LOAD an extension. It is installed once (into the folder `duckdb_config` names), by the first
    command that finds it missing or damaged, from the file inside its wheel; every later start-up costs
    only the LOAD, with no look at the wheel or at the installed extensions (issue #25). Nothing is
    downloaded."""
    loaded_as = _EXTENSIONS[kind][2]
    try:
        con.execute(f"LOAD {loaded_as}")
        return
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:  # not installed yet; a damaged file
        logger.info("installing the DuckDB extension %s from its wheel (%s)", kind, str(exc).splitlines()[0])
    # FORCE: a damaged or foreign file in the extension directory is replaced by the wheel's
    con.execute(f"FORCE INSTALL {literal(str(_wheel_file(kind)))}")
    con.execute(f"LOAD {loaded_as}")


def _wheel_file(kind: str) -> Path:
    """The extension's file inside its wheel (duckdb-extension-<kind>, built for this DuckDB)."""
    package, file_name, _ = _EXTENSIONS[kind]
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
    return path


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


def _data_path(s: config.Settings) -> str:
    local = lake.local_path(s.lake)  # a local lake is told from its text, without fsspec (issue #25)
    text = str(local.resolve()) if local is not None else str(s.lake_root)
    return text.rstrip("/") + "/"


def connect(
    where: Where = None,
    *,
    read_only: bool = False,
    lake_root: str | os.PathLike[str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the warehouse attached as `wh` and in use.

    A writer creates a missing SQLite catalog (with its data path at the lake root); a reader of a
    missing one fails with a clear message. `lake_root` (else the settings' lake: MAYORISTA_LAKE, else
    data/lake) is where new data files go; it must be where the catalog keeps them. Domain code reads
    through `reader.open_reader` and writes through `writes.publish` instead."""
    con = duckdb.connect(config=duckdb_config())
    try:
        attach(con, settings(where, lake_root), ALIAS, read_only=read_only)
        con.execute(f"USE {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def attach(
    con: duckdb.DuckDBPyConnection,
    where: Where,
    alias: str,
    *,
    read_only: bool = False,
    lake_root: str | os.PathLike[str] | None = None,
) -> None:
    """Attach a warehouse to an open connection under `alias` (e.g. to compare two warehouses)."""
    s = settings(where, lake_root)
    target = s.warehouse
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
    _register_lake(con, s.lake)
    with lock_budget():  # this attach's own wait, unless a publish's budget already runs
        _attach_waiting(con, uri, s, alias, read_only=read_only)
    stored = data_path(con, alias)
    if stored:
        _register_lake(con, stored)


def data_path(con: duckdb.DuckDBPyConnection, alias: str = ALIAS) -> str | None:
    """Where the attached catalog keeps its data files (its DATA_PATH), as the catalog recorded it."""
    row = con.execute(
        f"SELECT value FROM ducklake_options({literal(alias)}) WHERE option_name = 'data_path'"
    ).fetchone()
    return row[0] if row else None


def _attach_waiting(
    con: duckdb.DuckDBPyConnection,
    uri: str,
    s: config.Settings,
    alias: str,
    *,
    read_only: bool,
) -> None:
    """`_attach`, again every second while another process holds the catalog, until the budget ends."""
    deadline = _LOCK_DEADLINE.get()[1]
    target = s.warehouse
    while True:
        try:
            _attach(
                con,
                uri,
                target,
                alias,
                read_only=read_only,
                data_path=_data_path(s),
                explicit_lake=s.lake_given,
            )
            break
        except _Locked:
            if time.monotonic() > deadline:
                raise _locked_fault(target) from None
            logger.warning("the warehouse %s is locked by another process; waiting", describe(target))
            time.sleep(1.0)


def _register_lake(con: duckdb.DuckDBPyConnection, root: str | os.PathLike[str]) -> None:
    """How DuckDB reaches a lake that is not a local disk: an s3:// lake through the httpfs extension
    with the endpoint's credentials as a secret (`s3_access`); any other URI (memory:// in tests)
    through its fsspec filesystem, registered in the connection."""
    if lake.local_path(root) is not None:  # a local disk: DuckDB's own, no fsspec to import (issue #25)
        return
    if objectstore.is_s3(str(root)):
        s3_access(con)
        return
    where = lake.location(root)
    if not con.filesystem_is_registered(where.protocol if isinstance(where.protocol, str) else where.protocol[0]):
        con.register_filesystem(where.fs)


def s3_access(con: duckdb.DuckDBPyConnection) -> None:
    """httpfs and the S3 secret from the environment (pipelines/objectstore.py), once per connection:
    for a lake (DuckLake's DATA_PATH) or a landing zone on s3://."""
    made = con.execute("SELECT count(*) FROM duckdb_secrets() WHERE name = ?", [objectstore.SECRET]).fetchone()
    if not made[0]:
        objectstore.duckdb_secret(con, _install)


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
        if "requires the extension httpfs" in text:  # a reader of a catalog whose lake is on s3://
            s3_access(con)
            con.execute(f"ATTACH {literal(uri)} AS {identifier(alias)} ({', '.join(options)})")
            return
        if "does not match existing data path" in text:
            if explicit_lake:
                raise _other_lake(target, data_path, text.splitlines()[0]) from None
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


def _other_lake(target: str, data_path: str, detail: str) -> MayoristaError:
    return MayoristaError(
        f"the warehouse {describe(target)} keeps its data files under another lake than {data_path} "
        f"({detail}); give the lake it was created with, or a new --warehouse"
    )


def check_lake(con: duckdb.DuckDBPyConnection, where: Where) -> None:
    """For a run that will publish, before its work: a lake given (--lake, MAYORISTA_LAKE) must be the one
    the attached catalog keeps its data files under. A reader attaches without a data path, so only the
    publish would find out, after the run's work (a month of a metering backfill: a minute, every month)."""
    s = settings(where)
    if not s.lake_given:  # the catalog's own lake is used
        return
    stored, wanted = data_path(con), _data_path(s)
    if stored and stored.rstrip("/") != wanted.rstrip("/"):
        raise _other_lake(s.warehouse, wanted, f"the catalog keeps them under {stored}")


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


def warm(where: Where = None) -> threading.Thread:
    """Load the extensions in the background while a run reads and validates: the first load in a
    process takes about a second, later connections reuse it. Nothing is attached here."""
    backend = _catalog_uri(settings(where).warehouse)[1]

    def load() -> None:
        try:
            con = duckdb.connect(config=duckdb_config())
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


def exists(where: Where = None) -> bool:
    """Whether a warehouse has been created there (by a first publish)."""
    s = settings(where)
    if not is_postgres(s.warehouse):
        return Path(s.warehouse).exists()
    try:
        connect(s, read_only=True).close()
    except NoWarehouse:
        return False
    return True
