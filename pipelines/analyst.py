"""What analysts use: `mayorista sql` (one query, or a session on standard input), `mayorista
history`, and `connect()` for notebooks:

    from pipelines.analyst import connect; con = connect()      # read-only, the warehouse in use

Every connection attaches the warehouse READ-ONLY. DuckLake readers never block a publishing run,
and each statement reads the latest snapshot, so a session left open over lunch sees the night's
rows on its next statement. `FROM t AT (VERSION => n)` reads any table as of a snapshot.

Read-only means read-only (docs/warehouse.md, "What an analyst can and cannot do"). Two locks, because
neither alone is enough:
- the DuckDB session itself, once the warehouse is attached: no external access (no file is read or
  written, no extension installed or loaded) except the lake's data files, and a locked configuration
  (no SET, no RESET, no PRAGMA that changes a setting);
- every statement is checked before it runs: only queries (SELECT and the forms DuckDB rewrites to
  one: FROM, WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE, and EXPLAIN of a query), and none of the table
  functions that attach a database, run SQL text of their own, or write (sqlite_*, postgres_*,
  query(), DuckLake's maintenance functions). DuckDB allows ATTACH of the catalog file even with
  external access off (an attached database's files stay allowed), so this check is what refuses it;
  it also refuses BEGIN/COMMIT: a read-only session needs no transaction, and an open one would hold
  the SQLite catalog against every run."""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

import duckdb

from pipelines import config, warehouse
from pipelines.errors import MayoristaError
from pipelines.periods import Month

logger = logging.getLogger(__name__)

# DuckLake's functions that only read (snapshots, changes, files): every other ducklake_* writes
_DUCKLAKE_READERS = frozenset(
    {
        "ducklake_snapshots",
        "ducklake_current_snapshot",
        "ducklake_last_committed_snapshot",
        "ducklake_table_info",
        "ducklake_table_changes",
        "ducklake_table_insertions",
        "ducklake_table_deletions",
        "ducklake_list_files",
        "ducklake_options",
        "ducklake_settings",
    }
)
# table functions that attach databases, run SQL text the check cannot see, or write
_REFUSED_FUNCTIONS = frozenset({"query", "query_table", "checkpoint", "force_checkpoint"})
_REFUSED_PREFIXES = ("sqlite_", "postgres_", "mysql_", "ducklake_")
_EXPLAIN = re.compile(r"^\s*explain\s+(?:\([^)]*\)\s*)?(?:analy[sz]e\s+)?", re.IGNORECASE)

READ_ONLY = (
    "an analyst session is read-only: it runs queries (SELECT, FROM, WITH, DESCRIBE, SHOW, SUMMARIZE, "
    "EXPLAIN); it cannot attach or detach databases, install or load extensions, change settings, or "
    "read or write files. Writing is for the pipelines (docs/warehouse.md)"
)


class Refused(MayoristaError):
    """A statement an analyst session does not run (it would write, attach, or escape the warehouse)."""


class SqlError(MayoristaError):
    """A query failed (DuckDB's own words)."""


def _function_names(node: Any) -> Iterable[str]:
    """Every function named anywhere in a serialized statement (scalar, aggregate, table function)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            name = item.get("function_name")
            if isinstance(name, str):
                yield name.lower()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_parser: duckdb.DuckDBPyConnection | None = None
_parser_lock = threading.Lock()


def _parse_tree(text: str) -> dict:
    """DuckDB's parse tree of a query, from a connection of its own with nothing attached: parsing must
    not touch the catalog (a statement on the analyst's connection starts a DuckLake transaction, which
    fails, and is then misreported, when the catalog's server is down).

    The text goes in as an escaped literal, not a bound parameter: DuckDB's Python client imports pandas
    (seconds, most of the command's start-up) the first time it binds one (docs/performance.md). The
    parser connection is locked down like the analyst's, so it could do nothing with the text even if
    it were SQL."""
    global _parser
    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(
                config={
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                    "enable_external_access": False,
                    "lock_configuration": True,
                }
            )
        return json.loads(_parser.execute(f"SELECT json_serialize_sql({warehouse.literal(text)})").fetchone()[0])


def _check_query(text: str) -> None:
    """Refuse a SELECT that calls a function which attaches, runs SQL of its own, or writes."""
    try:
        tree = _parse_tree(text)
    except duckdb.Error as exc:
        raise SqlError(str(exc).strip()) from exc
    if tree.get("error"):
        raise Refused(f"this query cannot be checked ({tree.get('error_message', 'unsupported')}): {READ_ONLY}")
    for name in _function_names(tree):
        refused = name in _REFUSED_FUNCTIONS or (name.startswith(_REFUSED_PREFIXES) and name not in _DUCKLAKE_READERS)
        if refused:
            raise Refused(f"{name}() is not allowed: {READ_ONLY}")


def statements(con: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.Statement]:
    """The statements of `sql`, each checked: a Refused error before anything runs if one is not a query."""
    try:
        found = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlError(str(exc).strip()) from exc
    for statement in found:
        kind = statement.type.name
        if kind == "TRANSACTION":
            raise Refused(
                f"{statement.query.strip() or 'transaction control'} is not allowed: an analyst session needs "
                "no transaction (each statement reads the latest snapshot on its own, and "
                "`AT (VERSION => n)` reads an earlier one), and an open transaction would hold the catalog "
                "against the pipelines' runs"
            )
        if kind == "EXPLAIN":
            inner = _EXPLAIN.sub("", statement.query, count=1)
            try:
                nested = duckdb.extract_statements(inner)
            except duckdb.Error as exc:
                raise SqlError(str(exc).strip()) from exc
            if len(nested) != 1 or nested[0].type.name != "SELECT":
                raise Refused(f"EXPLAIN of anything but a query is not allowed: {READ_ONLY}")
            _check_query(nested[0].query)
        elif kind == "SELECT" and statement.query.strip():
            _check_query(statement.query)
        elif not statement.query.strip():  # DuckDB's expansion of a statement, e.g. PIVOT's enum type
            raise Refused(
                "this statement creates objects of its own (a PIVOT without an IN list does): name the "
                f"values, `PIVOT t ON col IN ('a', 'b') USING ...`; {READ_ONLY}"
            )
        else:
            verb = statement.query.split(None, 1)[0].upper()
            raise Refused(f"{verb} is not allowed: {READ_ONLY}")
    return found


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """After the attach: no file outside the lake's data files, no extension, no setting changed.

    DuckDB keeps the attached catalog's own files allowed (it must go on reading them). A local lake's
    data folder is allowed by name; a lake on a registered filesystem (s3:// through fsspec, memory://)
    is reached through that filesystem, which the lock leaves in place."""
    data_path = warehouse.data_path(con)
    if data_path:  # a literal, not a bound parameter: binding one imports pandas (see `_parse_tree`)
        con.execute(f"SET allowed_directories = [{warehouse.literal(str(data_path).rstrip('/') + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET allow_unredacted_secrets = false")
    con.execute("SET lock_configuration = true")


class AnalystConnection:
    """`connect()`'s connection: DuckDB's own (locked down), every SQL text checked as `mayorista sql`
    checks it. Everything else (`.sql(...).pl()`, `.table`, `.register` of a frame, `.close`) is
    DuckDB's. A notebook runs Python with its user's rights: what the session refuses, a script could
    still do to files that user may write; the catalog's permissions (a read-only PostgreSQL role, a
    catalog file the analyst cannot write) are the boundary outside DuckDB (docs/warehouse.md)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def _checked(self, query: object) -> object:
        if isinstance(query, str):
            found = statements(self._con, query)
            if len(found) > 1:
                raise Refused("one statement at a time here (`mayorista sql` runs several)")
        elif isinstance(query, duckdb.Statement):
            statements(self._con, query.query)
        else:
            raise Refused(f"an analyst connection runs SQL text, not {type(query).__name__}")
        return query

    def sql(self, query: object, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyRelation | None:
        return self._con.sql(self._checked(query), *args, **kwargs)

    query = sql

    def execute(self, query: object, *args: Any, **kwargs: Any) -> AnalystConnection:
        self._con.execute(self._checked(query), *args, **kwargs)
        return self

    def executemany(self, query: object, *args: Any, **kwargs: Any) -> AnalystConnection:
        self._con.executemany(self._checked(query), *args, **kwargs)
        return self

    def from_query(self, query: object, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyRelation:
        return self._con.from_query(self._checked(query), *args, **kwargs)

    def cursor(self) -> AnalystConnection:
        return AnalystConnection(self._con.cursor())

    duplicate = cursor

    def _refused(self, *_: Any, **__: Any) -> None:
        raise Refused(READ_ONLY)

    begin = commit = rollback = checkpoint = _refused
    install_extension = load_extension = register_filesystem = unregister_filesystem = _refused

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def __enter__(self) -> AnalystConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()


def connect(where: warehouse.Where = None) -> AnalystConnection:
    """A read-only connection with the warehouse in use (default $MAYORISTA_WAREHOUSE or data/warehouse.sqlite)."""
    return AnalystConnection(_open(warehouse.settings(where)))


def _open(settings: config.Settings) -> duckdb.DuckDBPyConnection:
    con = warehouse.connect(settings, read_only=True)
    try:
        lock_down(con)
    except BaseException:
        con.close()
        raise
    return con


def _csv_ready(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """TIMESTAMPTZ columns as text in the session's zone: Python's datetime with a zone needs pytz,
    which the project does not carry (DuckDB's own text is also what the table view shows)."""
    if not any(str(t).startswith("TIMESTAMP WITH TIME ZONE") for t in rel.types):
        return rel
    columns = [
        f"{warehouse.identifier(name)}::VARCHAR AS {warehouse.identifier(name)}"
        if str(dtype).startswith("TIMESTAMP WITH TIME ZONE")
        else warehouse.identifier(name)
        for name, dtype in zip(rel.columns, rel.types)
    ]
    return rel.project(", ".join(columns))


def _render(rel: duckdb.DuckDBPyRelation | None, *, as_csv: bool) -> str:
    if rel is None:
        return ""
    if as_csv:
        rel = _csv_ready(rel)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rel.columns)
        while batch := rel.fetchmany(10_000):
            writer.writerows(["" if v is None else v for v in row] for row in batch)
        return out.getvalue().rstrip("\n")
    import polars as pl  # the table view only: CSV output and the session's start do without it

    frame = rel.pl()
    with pl.Config(tbl_rows=200, tbl_cols=-1, tbl_hide_dataframe_shape=False, tbl_width_chars=250, fmt_str_lengths=80):
        return str(frame)


def _run(con: duckdb.DuckDBPyConnection, sql: str, settings: config.Settings, *, as_csv: bool) -> list[str]:
    """Check every statement of `sql` (nothing runs if one is refused), then run each in turn and
    render its result: `SELECT 1; SELECT 2` prints both."""
    found = statements(con, sql)
    texts = []
    for statement in found:
        try:
            texts.append(_render(con.sql(statement), as_csv=as_csv))
        except duckdb.PermissionException as exc:  # a file outside the lake, an extension: the session's lock
            raise Refused(f"{str(exc).strip().splitlines()[0]}: {READ_ONLY}") from exc
        except duckdb.Error as exc:
            # the catalog's server gone mid-query: one sentence, not DuckDB's dump of the catalog's SQL
            raise warehouse.catalog_lost(exc, settings) or SqlError(str(exc).strip()) from exc
    return [t for t in texts if t]


def run_query(sql: str, where: warehouse.Where = None, *, csv: bool = False) -> str:
    """`mayorista sql QUERY`: run the query's statements read-only and return their printed results
    (separated by a blank line)."""
    settings = warehouse.settings(where)
    con = _open(settings)
    try:
        return "\n\n".join(_run(con, sql, settings, as_csv=csv))
    finally:
        con.close()


def _complete(buffer: str) -> bool:
    """A statement is complete at a `;` that is not inside a string or a comment."""
    if not buffer.rstrip().endswith(";"):
        return False
    try:
        duckdb.extract_statements(buffer)
    except duckdb.Error:
        return False  # e.g. a ';' inside an unfinished string literal
    return True


def session(stdin: TextIO, stdout: TextIO, where: warehouse.Where = None, *, csv: bool = False) -> None:
    """`mayorista sql` with no QUERY: statements from `stdin`, each run as soon as it is complete
    (ends with `;`), until end of input. An error is printed and the session goes on. Each statement
    runs on its own (no transaction spans two), so the session never holds the catalog between them."""
    settings = warehouse.settings(where)
    con = _open(settings)
    interactive = stdin.isatty()
    if interactive and not csv:
        # the table view's polars, imported while the person types the first statement (issue #25)
        threading.Thread(target=importlib.import_module, args=("polars",), name="import-polars", daemon=True).start()
    buffer = ""
    try:
        while True:
            if interactive:
                stdout.write("mayorista> " if not buffer else "      ...> ")
                stdout.flush()
            line = stdin.readline()
            if line:
                buffer += line
            if buffer.strip() and (not line or _complete(buffer)):
                try:
                    for text in _run(con, buffer, settings, as_csv=csv):
                        stdout.write(text + "\n")
                except MayoristaError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                stdout.flush()
                buffer = ""
            if not line:
                return
    finally:
        con.close()


def history(pipeline: str, period: str, where: warehouse.Where = None) -> str:
    """`mayorista history PIPELINE --period P`: the period's runs, oldest first."""
    label = Month.parse(period, "--period").label
    with warehouse.open_reader(where) as src:
        if not src.has("run_manifests"):
            return f"no runs recorded in {src.catalog}"
        rows = src.frame(
            "SELECT run_id, started_at::VARCHAR, finished_at::VARCHAR, status, snapshot_id, manifest "
            "FROM {m} WHERE pipeline = ? AND period = ? ORDER BY started_at, finished_at",
            [pipeline, label],
            m="run_manifests",
        ).rows()
    if not rows:
        return f"no {pipeline} runs for {label} in {src.catalog}"
    lines = [f"{pipeline} {label}: {len(rows)} run(s)"]
    for run_id, started, _finished, status, snapshot, manifest in rows:
        data = json.loads(manifest or "{}")
        lines.append(f"- {run_id}  started {started}  {status}  snapshot {snapshot if snapshot is not None else '-'}")
        if status == "failed" and data.get("reason"):
            lines.append(f"    reason: {data['reason'].splitlines()[0]}")
        for entry in data.get("inputs", []):
            lines.append(f"    input {entry.get('file')}  sha256 {entry.get('sha256')}  rows {entry.get('rows')}")
    return "\n".join(lines)
