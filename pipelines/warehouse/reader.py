"""Reading: the warehouse read-only through ONE connection, every query pinned to ONE snapshot.

`open_reader(where, as_of=RUN_ID)` looks the run up in `run_manifests` and reads its snapshot
(`FROM t AT (VERSION => n)`); without `as_of` (or `snapshot_id`) it pins the snapshot current when it
opens, so a publish landing meanwhile cannot mix two publications into one report or one run's reads.
Domain code names tables as `{placeholders}` and never the attached catalog:

    with warehouse.open_reader(settings) as src:
        if src.has("meter_completeness"):
            rows = src.frame("SELECT * FROM {c} WHERE month = ?", [month], c="meter_completeness")

`open_reader(..., missing_ok=True)` gives an empty reader (no tables) when nothing has been published
there yet, so a first run reads "nothing" through the same code."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.errors import MayoristaError
from pipelines.warehouse.catalog import (
    ALIAS,
    NoWarehouse,
    Where,
    check_lake,
    connect,
    describe,
    exists,
    identifier,
    literal,
    settings,
)

if TYPE_CHECKING:  # DuckDB's .pl() imports polars itself: `mayorista sql --csv` never needs it (issue #25)
    import polars as pl

logger = logging.getLogger(__name__)


@dataclass
class Reader:
    """A read-only view of the warehouse at `snapshot_id` (None: an unpinned view over a connection
    handed in by older code, see `over`; or an empty reader, see `open_reader(missing_ok=True)`)."""

    con: duckdb.DuckDBPyConnection | None
    snapshot_id: int | None
    as_of_run: str | None  # the run named by --as-of, if any
    catalog: str  # the catalog as a person would name it (no password)

    @classmethod
    def over(cls, con: duckdb.DuckDBPyConnection | None) -> Reader:
        """A reader over an open connection with the warehouse attached (None: no warehouse yet), not
        pinned: each query sees the latest commit, as the connection itself would. For callers that
        still pass a connection around; new code opens a reader instead."""
        return cls(con, None, None, "")

    @property
    def found(self) -> bool:
        """Whether there is a warehouse behind this reader (False: `open_reader(missing_ok=True)` found none)."""
        return self.con is not None

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _at(self, table: str) -> str:
        """`table` as of the snapshot, as a relation a query may alias (`{t} r`: DuckDB wants an alias
        before AT, so the pinned table is a subquery)."""
        name = f"{ALIAS}.{identifier(table)}"
        return name if self.snapshot_id is None else f"(FROM {name} AT (VERSION => {int(self.snapshot_id)}))"

    def has(self, table: str) -> bool:
        """Whether `table` existed at the snapshot."""
        if self.con is None:
            return False
        if self.snapshot_id is None:
            return table in self.tables()
        try:
            self.con.execute(f"SELECT 1 FROM {self._at(table)} LIMIT 0")
        except duckdb.CatalogException:
            return False
        return True

    def tables(self) -> set[str]:
        """The warehouse's tables now (`has` asks about the snapshot)."""
        if self.con is None:
            return set()
        return {
            r[0]
            for r in self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = ?", [ALIAS]
            ).fetchall()
        }

    def frame(
        self,
        sql: str,
        params: list[Any] | None = None,
        frames: dict[str, pl.DataFrame] | None = None,
        *,
        spill: Path | None = None,
        **tables: str,
    ) -> pl.DataFrame:
        """Run `sql` whose `{name}` placeholders are tables, each read as of the snapshot. `frames` are
        registered as relations under their names for the query (keys to join with: data is bound,
        never written into the SQL text). `spill`: a local folder (a run's scratch) through which a
        result of millions of rows comes over faster (`_through_parquet`)."""
        if self.con is None:
            raise NoWarehouse("no warehouse to read: nothing has been published there yet")
        pinned = {key: self._at(name) for key, name in tables.items()}
        for name, frame in (frames or {}).items():
            self.con.register(name, frame.to_arrow())
        try:
            query = sql.format(**pinned)
            if spill is not None:
                return self._through_parquet(query, params or [], spill)
            return self.con.execute(query, params or []).pl()
        finally:
            for name in frames or {}:
                self.con.unregister(name)

    def _through_parquet(self, query: str, params: list[Any], folder: Path) -> pl.DataFrame:
        """The result written by DuckDB to an uncompressed Parquet file in `folder` and read back by polars.
        `.pl()` fills its result on one thread: for a month of stored readings (24 M keys and values)
        1.8 s, against 1.2 s for the COPY and 0.15 s for the read (docs/performance.md). The same rows in
        the same order, with the same types."""
        import polars as pl

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"result-{uuid.uuid4().hex}.parquet"
        try:
            self.con.execute(
                f"COPY ({query}) TO {literal(str(path))} (FORMAT parquet, COMPRESSION uncompressed)", params
            )
            return pl.read_parquet(path)
        finally:
            path.unlink(missing_ok=True)

    def run_row(self, pipeline: str, period: str) -> dict[str, Any] | None:
        """The run whose publish put the period's rows in this snapshot: the latest published run of the
        period at or before it (None when the period was never published)."""
        if not self.has("run_manifests"):
            return None
        rows = self.frame(
            "SELECT run_id, started_at, finished_at, snapshot_id, manifest FROM {m} "
            "WHERE pipeline = ? AND period = ? AND status = 'published' "
            "ORDER BY snapshot_id DESC NULLS LAST, finished_at DESC LIMIT 1",
            [pipeline, period],
            m="run_manifests",
        )
        if not rows.height:
            return None
        row = rows.row(0, named=True)
        row["manifest"] = json.loads(row["manifest"]) if row["manifest"] else {}
        return row

    def checks(self, run_id: str) -> pl.DataFrame:
        """That run's validation results, warnings and failures first."""
        if not self.has("validation_results"):
            import polars as pl

            return pl.DataFrame(schema={c: pl.String for c in ("source", "check", "column", "severity", "detail")})
        return self.frame(
            'SELECT source, "check", "column", severity, success, unexpected_count, detail FROM {v} '
            'WHERE run_id = ? ORDER BY success, source, "check", "column"',
            [run_id],
            v="validation_results",
        )


def open_reader(
    where: Where = None,
    *,
    as_of: str | None = None,
    snapshot_id: int | None = None,
    missing_ok: bool = False,
    publishing: bool = False,
) -> Reader:
    """A read-only reader pinned to the snapshot `as_of` (a run id) published, else `snapshot_id`, else
    the current one. `missing_ok`: an empty reader where no warehouse exists yet (else NoWarehouse).
    `publishing`: the reader of a run that will publish, which fails at once when the lake it was given
    is not the catalog's (`catalog.check_lake`)."""
    s = settings(where)
    if missing_ok and not exists(s):
        return Reader(None, None, None, describe(s))
    con = connect(s, read_only=True)
    try:
        if publishing:
            check_lake(con, s)
        if as_of is not None:
            snapshot_id = _snapshot_of_run(con, as_of)
        elif snapshot_id is None:
            snapshot_id = current_snapshot(con)
    except BaseException:
        con.close()
        raise
    logger.debug("reading snapshot %s%s of %s", snapshot_id, f" (run {as_of})" if as_of else "", describe(s))
    return Reader(con, int(snapshot_id), as_of, describe(s))


def current_snapshot(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots({literal(ALIAS)})").fetchone()[0])


def snapshots(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every live snapshot: snapshot_id, snapshot_time."""
    return con.execute(f"SELECT snapshot_id, snapshot_time FROM ducklake_snapshots({literal(ALIAS)}) ORDER BY 1").pl()


def _snapshot_of_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    row = (
        con.execute(
            "SELECT status, snapshot_id, pipeline, period FROM run_manifests WHERE run_id = ?", [run_id]
        ).fetchone()
        if "run_manifests" in tables(con)
        else None
    )
    if row is None:
        raise MayoristaError(
            f"no run {run_id!r} in run_manifests: list a period's runs with `mayorista history PIPELINE --period P`"
        )
    status, snapshot, pipeline, period = row
    if status != "published" or snapshot is None:
        raise MayoristaError(
            f"run {run_id} ({pipeline} {period}) did not publish (status {status}): it has no snapshot "
            "to render; pick a published run from `mayorista history`"
        )
    alive = con.execute(
        f"SELECT count(*) FROM ducklake_snapshots({literal(ALIAS)}) WHERE snapshot_id = ?", [snapshot]
    ).fetchone()[0]
    if not alive:
        raise MayoristaError(
            f"run {run_id} published snapshot {snapshot}, which maintenance has since expired "
            "(snapshots older than MAYORISTA_SNAPSHOT_RETENTION_DAYS are dropped, NCC-11's never)"
        )
    return int(snapshot)


@contextmanager
def reading(source: Reader | Where) -> Iterator[Reader]:
    """`source` itself when it is a reader (left open: its owner closes it), else a reader opened on
    that warehouse for the block (an empty one where none exists yet)."""
    if isinstance(source, Reader):
        yield source
        return
    with open_reader(source, missing_ok=True) as src:
        yield src


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables of the warehouse attached to `con`."""
    return Reader.over(con).tables()


def table_names(where: Where = None) -> set[str]:
    with open_reader(where) as src:
        return src.tables()


def query(sql: str, where: Where = None, params: list[Any] | None = None) -> pl.DataFrame:
    """Read-only query returning a polars frame (summaries, tests). The SQL names tables itself and
    reads the current snapshot."""
    con = connect(where, read_only=True)
    try:
        return con.sql(sql, params=params or None).pl()
    finally:
        con.close()
