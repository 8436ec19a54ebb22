"""Warehouse upkeep (weekly DAG `warehouse_maintenance`, or `mayorista maintain`):

1. merge small data files (each publish writes a few; analysts' scans get slower with many),
2. expire snapshots older than the retention, EXCEPT those that NCC-11 runs published: those are what
   was sent to the regulator and stay readable for good (`AT (VERSION => n)`), and the current one,
3. delete data files that no remaining snapshot needs, and files no commit ever recorded (left by a
   run killed mid-publish)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipelines import warehouse

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90


@dataclass
class MaintenanceResult:
    merged: int
    expired: list[int]
    kept_for_ncc11: list[int]
    files_deleted: int

    @property
    def summary(self) -> str:
        return (
            f"warehouse maintenance: merged {self.merged} file(s); expired {len(self.expired)} snapshot(s); "
            f"kept {len(self.kept_for_ncc11)} NCC-11 snapshot(s) for good; deleted {self.files_deleted} file(s)"
        )


def retention_days(override: int | None = None) -> int:
    return int(
        override
        if override is not None
        else os.environ.get("MAYORISTA_SNAPSHOT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    )


def maintain(
    warehouse_: str | os.PathLike[str] | None = None, *, retention_days: int | None = None, now: datetime | None = None
) -> MaintenanceResult:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=globals()["retention_days"](retention_days))
    alias = warehouse.literal(warehouse.ALIAS)
    con = warehouse.connect(warehouse_)
    try:
        merged = con.execute(f"CALL ducklake_merge_adjacent_files({alias})").fetchall()
        kept = set()
        if "run_manifests" in warehouse.tables(con):
            kept = {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT snapshot_id FROM run_manifests WHERE pipeline = 'ncc11' AND status = 'published' "
                    "AND snapshot_id IS NOT NULL"
                ).fetchall()
            }
        current = con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots({alias})").fetchone()[0]
        old = [
            r[0]
            for r in con.execute(
                f"SELECT snapshot_id FROM ducklake_snapshots({alias}) WHERE snapshot_time < ? ORDER BY 1", [cutoff]
            ).fetchall()
        ]
        expire = [s for s in old if s not in kept and s != current]
        if expire:
            con.execute(f"CALL ducklake_expire_snapshots({alias}, versions => ?)", [expire])
        cleaned = con.execute(f"CALL ducklake_cleanup_old_files({alias}, cleanup_all => true)").fetchall()
        orphans = con.execute(f"CALL ducklake_delete_orphaned_files({alias}, cleanup_all => true)").fetchall()
    finally:
        con.close()
    result = MaintenanceResult(len(merged), expire, sorted(kept & set(old)), len(cleaned) + len(orphans))
    logger.info(result.summary)
    return result
