"""Weekly warehouse upkeep: merge small files, expire snapshots older than the retention
(MAYORISTA_SNAPSHOT_RETENTION_DAYS, default 90) except those NCC-11 runs published (what was sent to
the regulator is kept for good), delete files no snapshot needs once they are older than the safe age
(MAYORISTA_MAINTENANCE_MIN_AGE_HOURS, default 24), so it may overlap a daily ingest: the files of a
publish not yet committed, and those a running query reads, are younger. The logic is
pipelines.maintenance.maintain (also `mayorista maintain`)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from pipelines import maintenance, periods


@dag(
    dag_id="warehouse_maintenance",
    schedule="0 3 * * 0",  # Sunday 03:00, when few pipelines run (overlapping one is safe)
    start_date=pendulum.datetime(2026, 3, 1, tz=periods.GUATEMALA.key),
    catchup=False,
    max_active_runs=1,
    tags=["warehouse"],
    doc_md=__doc__,
)
def warehouse_maintenance():
    @task
    def maintain() -> str:
        result = maintenance.maintain()
        print(result.summary)
        return result.summary

    maintain()


warehouse_maintenance()
