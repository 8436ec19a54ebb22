"""Do two warehouses hold the same rows? The cluster's (PostgreSQL catalog) against a single-machine run's.

Every table is compared as a multiset of rows (EXCEPT ALL both ways), without `run_id`, which differs
between runs by design. The run history (RUN_HISTORY: rows per run, a month of daily runs against one
run of the month) is reported; it fails the comparison only if the rest differs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import warehouse

log = logging.getLogger(__name__)

# differ between runs by design: which run, and when it saw a file or made an estimate
PER_RUN = ("run_id", "superseded_by_run", "first_seen_at", "estimated_at", "superseded_at")
# one row (or one set of rows) per run: a month of daily runs against one run of the month
RUN_HISTORY = ("run_manifests", "validation_results")
# where the landing zone keeps a file and when it last wrote it: a bucket on the cluster, a folder on the
# single machine. The ledger's path is compared relative to each landing zone; its modified_at not at all.
PER_STORE = {"landed_files": ("modified_at",)}


@dataclass
class Comparison:
    equal: bool = True
    lines: list[str] = field(default_factory=list)


def _tables(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = 'main' GROUP BY table_name",
        [alias],
    ).fetchall()
    return dict(rows)


def _select(columns: list[str], table: str, landing: str) -> str:
    """The compared columns; landed_files' path without its landing zone's prefix."""
    out = []
    for c in columns:
        col = warehouse.identifier(c)
        if table in PER_STORE and c == "path" and landing:
            col = f"CASE WHEN starts_with(path, {warehouse.literal(landing)}) THEN substr(path, {len(landing) + 1}) ELSE path END AS path"
        out.append(col)
    return ", ".join(out)


def compare_warehouses(
    cluster: str, single: str, cluster_lake: Path | str, landings: tuple[str, str] = ("", "")
) -> Comparison:
    """`landings`: the cluster's and the single machine's landing zone (the prefix of landed_files.path)."""
    con = duckdb.connect(config=warehouse.duckdb_config())
    result = Comparison()
    try:
        warehouse.attach(con, cluster, "cluster", read_only=True, lake_root=str(cluster_lake))
        warehouse.attach(con, single, "single", read_only=True, lake_root=str(Path(single).parent / "lake"))
        ours, theirs = _tables(con, "cluster"), _tables(con, "single")
        for table in sorted(set(ours) | set(theirs)):
            if table not in ours or table not in theirs:
                result.equal = False
                result.lines.append(
                    f"compare {table}: only in the {'cluster' if table in ours else 'single-machine'} warehouse"
                )
                continue
            columns = [c for c in theirs[table] if c in ours[table]]
            kept = [c for c in columns if c not in PER_RUN and c not in PER_STORE.get(table, ())]
            ours_cols, their_cols = (_select(kept, table, prefix) for prefix in landings)
            name = warehouse.identifier(table)
            counts = con.execute(
                f"SELECT (SELECT count(*) FROM cluster.main.{name}), (SELECT count(*) FROM single.main.{name}), "
                f"(SELECT count(*) FROM (SELECT {ours_cols} FROM cluster.main.{name} EXCEPT ALL SELECT {their_cols} FROM single.main.{name})), "
                f"(SELECT count(*) FROM (SELECT {their_cols} FROM single.main.{name} EXCEPT ALL SELECT {ours_cols} FROM cluster.main.{name}))"
            ).fetchone()
            n_cluster, n_single, only_cluster, only_single = counts
            same = only_cluster == 0 and only_single == 0
            history = table in RUN_HISTORY
            verdict = (
                "equal rows"
                if same
                else f"DIFFERENT: {only_cluster} rows only in the cluster's, {only_single} only in the single machine's"
            )
            if not same and history:
                verdict = "differs as expected: rows per run, and the cluster made more runs (a run a day)"
            elif not same:
                result.equal = False
            result.lines.append(f"compare {table}: cluster {n_cluster} rows, single machine {n_single} rows: {verdict}")
    finally:
        con.close()
    n_equal = sum("equal rows" in line for line in result.lines)
    result.lines.append(
        f"comparison: {n_equal} of {len(result.lines)} tables with equal rows"
        + ("; the rest are run histories" if result.equal else "; SOME TABLES DIFFER")
    )
    return result
