"""SMEC 15-minute readings, daily: registry + new readings files -> quarantine, VEE, completeness, hourly values.

Each run covers one day (data interval [D 01:00, D+1 01:00) local): it reads the files landed under
<landing>/smec since the last run (the ledger of landed files) and recomputes the month of D from its
stored readings (see pipelines/metering/schedule.py). catchup=True with a start date, so
`airflow backfill create` over past days works; params `month` / `day` override the period (tests,
manual reruns). After the ingest publishes, `report` writes the month's metering report (HTML + PDF,
pipelines/reports/meters.py) as of the snapshot that run published. The run of a month's last day (or
of an explicit month) announces the month as closed, which triggers that month's delivery check
(vpn_delivery_monthly).

Why explicit `month`/`day` params and not Airflow's partitioned assets (3.2+): docs/partitions.md."""

from __future__ import annotations

from datetime import datetime

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from pipelines import assets, config, periods
from pipelines.airflow_ids import airflow_run_id
from pipelines.metering import job, schedule

GT = pendulum.timezone(periods.GUATEMALA.key)
METER_TABLES = [Asset(uri) for uri in assets.outlets("meters")]
MONTH_CLOSED = Asset(assets.METER_MONTH_CLOSED)
REPORT = Asset(assets.METER_REPORTS)


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
    doc_md=__doc__,
)
def meter_readings():
    @task
    def period(params=None, data_interval_start=None) -> str:
        return schedule.run_month(params["month"], params["day"], data_interval_start).label  # XCom: text

    @task(outlets=METER_TABLES, max_active_tis_per_dag=1)  # one at a time across all runs, backfills included
    def ingest(month: str, **context) -> dict:
        input_dir = context["params"]["input_dir"] or config.Settings.resolve().inputs("meters")
        result = job.ingest_month(periods.Month.parse(month), input_dir, run_id=airflow_run_id(context, month))
        print(result.summary)
        return {"month": month, "snapshot_id": result.snapshot_id, "counts": result.counts}

    @task(outlets=[REPORT])
    def report(ingested: dict) -> str:
        """The month's report from what this run published (its snapshot, not whatever is newest by
        then); a failure here leaves the ingest published and can be retried alone."""
        from pipelines.reports import meters as reports

        (files,) = reports.render(periods.Month.parse(ingested["month"]), snapshot=ingested["snapshot_id"])
        print("report:", files.describe())
        return str(files.html)

    @task.short_circuit
    def month_is_complete(params=None, data_interval_start=None) -> bool:
        return schedule.closes_month(params["month"], data_interval_start)

    @task(outlets=[MONTH_CLOSED])
    def announce_month_closed(month: str, outlet_events=None) -> None:
        outlet_events[MONTH_CLOSED].extra = {"month": month}

    month = period()
    ingested = ingest(month)
    report(ingested)
    ingested >> month_is_complete() >> announce_month_closed(month)


meter_readings()
