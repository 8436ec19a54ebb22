"""SMEC 15-minute readings, daily: registry + new readings files -> quarantine, VEE, completeness, hourly values.

Each run covers one day (data interval [D 01:00, D+1 01:00) local): it reads the files landed under
<landing>/smec since the last run (the ledger of landed files) and recomputes the month of D from its
stored readings (see pipelines/metering/schedule.py). catchup=True with a start date, so
`airflow backfill create` over past days works; params `month` / `day` override the period (tests,
manual reruns). The run of a month's last day (or of an explicit month) announces the month as
closed, which triggers that month's delivery check (vpn_delivery_monthly)."""

from __future__ import annotations

from datetime import datetime

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, get_current_context, task

from pipelines import assets, config
from pipelines.airflow_ids import airflow_run_id
from pipelines.metering import job, schedule

GT = pendulum.timezone("America/Guatemala")
METER_TABLES = [Asset(assets.table(t)) for t in job.WAREHOUSE_TABLES]
MONTH_CLOSED = Asset(assets.METER_MONTH_CLOSED)


@dag(
    dag_id="meter_readings",
    schedule=CronDataIntervalTimetable("0 1 * * *", timezone=GT),  # after PrimeRead's nightly interrogation
    start_date=datetime(2026, 3, 1, tzinfo=GT),
    catchup=True,
    max_active_runs=1,  # runs in day order: a month's last day announces it closed after its other days
    params={
        "month": Param(None, type=["null", "string"], description="YYYY-MM to (re)ingest"),
        "day": Param(None, type=["null", "string"], description="YYYY-MM-DD: ingest the month of this day"),
        "input_dir": Param(None, type=["null", "string"], description="default <landing>/smec"),
    },
    tags=["smec", "metering"],
)
def meter_readings():
    @task
    def period() -> str:
        ctx = get_current_context()
        return schedule.run_month(ctx["params"]["month"], ctx["params"]["day"], ctx.get("data_interval_start"))

    @task(outlets=METER_TABLES, max_active_tis_per_dag=1)  # one at a time across all runs, backfills included
    def ingest(month: str, **context) -> dict[str, int]:
        input_dir = context["params"]["input_dir"] or config.landing_root() / "smec"
        result = job.ingest_month(month, input_dir, run_id=airflow_run_id(context, month))
        print(result.summary)
        return result.counts

    @task.short_circuit
    def month_is_complete() -> bool:
        ctx = get_current_context()
        return schedule.closes_month(ctx["params"]["month"], ctx.get("data_interval_start"))

    @task(outlets=[MONTH_CLOSED])
    def announce_month_closed(month: str) -> None:
        get_current_context()["outlet_events"][MONTH_CLOSED].extra = {"month": month}

    month = period()
    ingest(month) >> month_is_complete() >> announce_month_closed(month)


meter_readings()
