"""Where a report's figures come from: the warehouse read-only, every query pinned to ONE snapshot.

`open_source(warehouse, as_of=RUN_ID)` looks the run up in `run_manifests` and reads its snapshot
(`FROM t AT (VERSION => n)`); without `as_of` it pins the current snapshot, so a publish landing while
a report renders cannot mix two publications into one report."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from pipelines import warehouse
from pipelines.errors import MayoristaError

logger = logging.getLogger(__name__)


@dataclass
class Source:
    con: duckdb.DuckDBPyConnection
    snapshot_id: int
    as_of_run: str | None  # the run named by --as-of, if any
    warehouse: str

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, table: str) -> bool:
        """Whether `table` existed at the snapshot."""
        try:
            self.con.execute(f"SELECT 1 FROM {warehouse.identifier(table)} AT (VERSION => {self.snapshot_id}) LIMIT 0")
        except duckdb.CatalogException:
            return False
        return True

    def frame(self, sql: str, params: list[Any] | None = None, **tables: str) -> pl.DataFrame:
        """Run `sql` whose `{name}` placeholders are tables, each read as of the snapshot."""
        pinned = {
            key: f"{warehouse.identifier(name)} AT (VERSION => {self.snapshot_id})" for key, name in tables.items()
        }
        return self.con.execute(sql.format(**pinned), params or []).pl()

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
            return pl.DataFrame(schema={c: pl.String for c in ("source", "check", "column", "severity", "detail")})
        return self.frame(
            'SELECT source, "check", "column", severity, success, unexpected_count, detail FROM {v} '
            'WHERE run_id = ? ORDER BY success, source, "check", "column"',
            [run_id],
            v="validation_results",
        )


def open_source(
    warehouse_: str | os.PathLike[str] | None = None, *, as_of: str | None = None, snapshot_id: int | None = None
) -> Source:
    """A read-only source pinned to the snapshot `as_of` (a run id) published, else `snapshot_id`,
    else the current one."""
    con = warehouse.connect(warehouse_, read_only=True)
    try:
        if as_of is not None:
            snapshot_id = _snapshot_of_run(con, as_of)
        elif snapshot_id is None:
            snapshot_id = int(
                con.execute(
                    f"SELECT max(snapshot_id) FROM ducklake_snapshots({warehouse.literal(warehouse.ALIAS)})"
                ).fetchone()[0]
            )
    except BaseException:
        con.close()
        raise
    logger.info("reports read snapshot %s%s", snapshot_id, f" (run {as_of})" if as_of else "")
    return Source(con, int(snapshot_id), as_of, warehouse.describe(warehouse_))


def _snapshot_of_run(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    tables = warehouse.tables(con)
    row = (
        con.execute(
            "SELECT status, snapshot_id, pipeline, period FROM run_manifests WHERE run_id = ?", [run_id]
        ).fetchone()
        if "run_manifests" in tables
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
        f"SELECT count(*) FROM ducklake_snapshots({warehouse.literal(warehouse.ALIAS)}) WHERE snapshot_id = ?",
        [snapshot],
    ).fetchone()[0]
    if not alive:
        raise MayoristaError(
            f"run {run_id} published snapshot {snapshot}, which maintenance has since expired "
            "(snapshots older than MAYORISTA_SNAPSHOT_RETENTION_DAYS are dropped, NCC-11's never)"
        )
    return int(snapshot)
