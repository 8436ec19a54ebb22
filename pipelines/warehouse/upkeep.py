"""DuckLake's own upkeep calls, for pipelines.maintenance (which decides what to keep and when): each
is the SQL text of one call, run by maintenance's retrying session, or a read of the catalog's file
lists. Only numbers and timestamps we computed go into the text."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from pipelines.warehouse.catalog import ALIAS, identifier, literal

_ALIAS = literal(ALIAS)


def _timestamp(moment: datetime) -> str:
    return f"TIMESTAMPTZ {literal(moment.astimezone(UTC).isoformat())}"


def delete_orphans(older_than: datetime) -> str:
    """Delete data files no commit ever recorded, older than `older_than`."""
    return f"SELECT * FROM ducklake_delete_orphaned_files({_ALIAS}, older_than => {_timestamp(older_than)})"


def merge_files() -> str:
    """Merge small adjacent data files (the replaced ones are scheduled for deletion)."""
    return f"SELECT * FROM ducklake_merge_adjacent_files({_ALIAS})"


def expire(versions: list[int]) -> str:
    """Expire these snapshots."""
    return (
        f"SELECT * FROM ducklake_expire_snapshots({_ALIAS}, versions => [{', '.join(str(int(v)) for v in versions)}])"
    )


def cleanup(older_than: datetime) -> str:
    """Delete the files scheduled for deletion before `older_than`."""
    return f"SELECT * FROM ducklake_cleanup_old_files({_ALIAS}, older_than => {_timestamp(older_than)})"


def snapshots_before(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> list[int]:
    return [
        r[0]
        for r in con.execute(
            f"SELECT snapshot_id FROM ducklake_snapshots({_ALIAS}) WHERE snapshot_time < ? ORDER BY 1", [cutoff]
        ).fetchall()
    ]


def files(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple]:
    """The current snapshot's files of `table`: (data_file, size, footer size, delete_file, size, footer size)."""
    return con.execute(
        "SELECT data_file, data_file_size_bytes, data_file_footer_size, delete_file, delete_file_size_bytes, "
        f"delete_file_footer_size FROM ducklake_list_files({_ALIAS}, ?)",
        [table],
    ).fetchall()


def rebuild_without(con: duckdb.DuckDBPyConnection, table: str, column: str, values: list[str]) -> None:
    """Inside a transaction: `table` rebuilt from every partition but `column` IN `values`, whose data
    files are pruned by their value and never opened (NOT IN, NOT (...) or an OR with IS NULL would
    open them); rows with a NULL period are kept apart. Older snapshots still read as they were."""
    name, temp = identifier(table), identifier(f"{table}__repair")
    con.execute(f"CREATE TABLE {temp} AS SELECT * FROM {name} LIMIT 0")
    con.execute(f"ALTER TABLE {temp} SET PARTITIONED BY ({identifier(column)})")
    con.execute(
        f"INSERT INTO {temp} SELECT * FROM {name} WHERE " + " AND ".join(f"{identifier(column)} <> ?" for _ in values),
        values,
    )
    con.execute(f"INSERT INTO {temp} SELECT * FROM {name} WHERE {identifier(column)} IS NULL")
    con.execute(f"DROP TABLE {name}")
    con.execute(f"ALTER TABLE {temp} RENAME TO {name}")
