"""The DuckDB warehouse: the one file analysts query.

Every publication is one transaction that first deletes the period's rows and then inserts the new
ones, so a re-run replaces and never duplicates, and a failure leaves the previous rows in place.
DuckDB allows one writer per file; DAGs that write it run with max_active_runs=1, and a writer that
finds the file locked by another process waits and retries for a bounded time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines import config, lake

Rows = pl.DataFrame | str  # a frame, or a Parquet path/glob read by DuckDB directly


def connect(path: Path | None = None, *, read_only: bool = False, wait_s: float = 120.0) -> duckdb.DuckDBPyConnection:
    path = Path(path or config.warehouse_path())
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _relation(con: duckdb.DuckDBPyConnection, rows: Rows) -> duckdb.DuckDBPyRelation:
    if isinstance(rows, str):
        where = lake.location(rows)
        if not lake.is_local(where) and not con.filesystem_is_registered(where.protocol):
            # the lake's own fsspec filesystem (same credentials as every other lake access)
            con.register_filesystem(where.fs)
        return con.read_parquet(rows)
    return con.from_arrow(rows.to_arrow())


def _replace(con: duckdb.DuckDBPyConnection, table: str, rows: Rows, where: dict[str, Any]) -> None:
    incoming = _relation(con, rows)
    con.register("_incoming", incoming)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM _incoming LIMIT 0")
        if where:
            clause = " AND ".join(f"{k} = ?" for k in where)
            con.execute(f"DELETE FROM {table} WHERE {clause}", list(where.values()))
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def publish(writes: list[tuple[str, Rows, dict[str, Any]]], path: Path | None = None) -> None:
    """Replace, in one transaction, the rows of each table that match its `where` (column = value)."""
    con = connect(path)
    try:
        con.execute("BEGIN TRANSACTION")
        for table, rows, where in writes:
            _replace(con, table, rows, where)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def query(sql: str, path: Path | None = None, params: list[Any] | None = None) -> pl.DataFrame:
    """Read-only query returning a polars frame (used by summaries and tests)."""
    con = connect(path, read_only=True)
    try:
        return con.sql(sql, params=params or None).pl()
    finally:
        con.close()
