"""What analysts use: `mayorista sql` (one query, or a session on standard input), `mayorista
history`, and `connect()` for notebooks:

    from pipelines.analyst import connect; con = connect()      # read-only, the warehouse in use

Every connection attaches the warehouse READ-ONLY. DuckLake readers never block a publishing run,
and each statement reads the latest snapshot, so a session left open over lunch sees the night's
rows on its next statement. `FROM t AT (VERSION => n)` reads any table as of a snapshot."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from typing import TextIO

import duckdb
import polars as pl

from pipelines import warehouse
from pipelines.errors import MayoristaError

logger = logging.getLogger(__name__)


def connect(warehouse_: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection with the warehouse in use (default $MAYORISTA_WAREHOUSE or data/warehouse.sqlite)."""
    return warehouse.connect(warehouse_, read_only=True)


def _render(rel: duckdb.DuckDBPyRelation | None, *, as_csv: bool) -> str:
    if rel is None:
        return ""
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rel.columns)
        while batch := rel.fetchmany(10_000):
            writer.writerows(["" if v is None else v for v in row] for row in batch)
        return out.getvalue().rstrip("\n")
    frame = rel.pl()
    with pl.Config(tbl_rows=200, tbl_cols=-1, tbl_hide_dataframe_shape=False, tbl_width_chars=250, fmt_str_lengths=80):
        return str(frame)


def _answer(
    con: duckdb.DuckDBPyConnection, sql: str, warehouse_: str | os.PathLike[str] | None, *, as_csv: bool
) -> str:
    """Run one statement and render its result (a relation runs as it is fetched, so both are inside)."""
    try:
        return _render(con.sql(sql), as_csv=as_csv)
    except duckdb.Error as exc:
        # the catalog's server gone mid-query: one sentence, not DuckDB's dump of the catalog's SQL
        raise warehouse.catalog_lost(exc, warehouse_) or MayoristaError(str(exc).strip()) from exc


def run_query(sql: str, warehouse_: str | os.PathLike[str] | None = None, *, csv: bool = False) -> str:
    """`mayorista sql QUERY`: run one read-only query and return its printed result."""
    con = connect(warehouse_)
    try:
        return _answer(con, sql, warehouse_, as_csv=csv)
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


def session(
    stdin: TextIO, stdout: TextIO, warehouse_: str | os.PathLike[str] | None = None, *, csv: bool = False
) -> None:
    """`mayorista sql` with no QUERY: statements from `stdin`, each run as soon as it is complete
    (ends with `;`), until end of input. An error is printed and the session goes on."""
    con = connect(warehouse_)
    interactive = stdin.isatty()
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
                    text = _answer(con, buffer, warehouse_, as_csv=csv)
                    if text:
                        stdout.write(text + "\n")
                except MayoristaError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                stdout.flush()
                buffer = ""
            if not line:
                return
    finally:
        con.close()


def history(pipeline: str, period: str, warehouse_: str | os.PathLike[str] | None = None) -> str:
    """`mayorista history PIPELINE --period P`: the period's runs, oldest first."""
    con = connect(warehouse_)
    try:
        if "run_manifests" not in warehouse.tables(con):
            return f"no runs recorded in {warehouse.describe(warehouse_)}"
        rows = con.execute(
            "SELECT run_id, started_at, finished_at, status, snapshot_id, manifest FROM run_manifests "
            "WHERE pipeline = ? AND period = ? ORDER BY started_at, finished_at",
            [pipeline, period],
        ).fetchall()
    finally:
        con.close()
    if not rows:
        return f"no {pipeline} runs for {period} in {warehouse.describe(warehouse_)}"
    lines = [f"{pipeline} {period}: {len(rows)} run(s)"]
    for run_id, started, _finished, status, snapshot, manifest in rows:
        data = json.loads(manifest or "{}")
        lines.append(f"- {run_id}  started {started}  {status}  snapshot {snapshot if snapshot is not None else '-'}")
        if status == "failed" and data.get("reason"):
            lines.append(f"    reason: {data['reason'].splitlines()[0]}")
        for entry in data.get("inputs", []):
            lines.append(f"    input {entry.get('file')}  sha256 {entry.get('sha256')}  rows {entry.get('rows')}")
    return "\n".join(lines)
