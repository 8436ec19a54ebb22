"""NCC-11 quarterly wholesale cost report: ingest + validate -> transform -> publish.

One run per programming quarter. The quarter is the `quarter` param when given (backfills, reruns,
forward projections), else the month in which the run's data interval starts."""

from __future__ import annotations

from datetime import datetime

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from pipelines import config, periods
from pipelines.ncc11 import job

GT = pendulum.timezone("America/Guatemala")
NCC11_TABLES = [Asset(f"mayorista://warehouse/{table}") for table in job.OUTPUT_TABLES]


@dag(
    dag_id="ncc11_quarterly",
    schedule=CronDataIntervalTimetable("0 0 1 2,5,8,11 *", timezone=GT),  # regulated tariff quarters
    start_date=datetime(2025, 2, 1, tzinfo=GT),
    catchup=False,
    max_active_runs=1,  # one writer of the DuckDB warehouse
    params={
        "quarter": Param(None, type=["null", "string"], description="first month of the quarter, YYYY-MM"),
        "input_dir": Param(None, type=["null", "string"], description="default <landing>/ncc11/<quarter>"),
    },
    tags=["ncc11"],
)
def ncc11_quarterly():
    @task
    def ingest() -> str:
        ctx = get_current_context()
        quarter = periods.resolve_period(ctx["params"]["quarter"], ctx["data_interval_start"], "quarter")
        input_dir = ctx["params"]["input_dir"] or config.landing_root() / "ncc11" / quarter
        return str(job.ingest(quarter, input_dir, run_id=ctx["run_id"]))

    @task
    def transform(stage: str) -> str:
        return str(job.transform(stage))

    @task(outlets=NCC11_TABLES)
    def publish(stage: str) -> dict[str, int]:
        return job.publish(stage).rows

    publish(transform(ingest()))


ncc11_quarterly()
