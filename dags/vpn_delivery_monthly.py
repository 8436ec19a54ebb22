"""Monthly review of VPN changes and Direct@mm deliveries (NCC-14 numeral 14.10).

Runs at 06:00 Guatemala time on the 1st; its data interval is the previous month, which is the month
reviewed (a `month` param overrides it). It also runs as soon as meter_readings announces a month
closed (asset event with extra {"month": ...}): that month is reviewed. Catch-up from the start date makes past months backfillable;
a re-run of a month replaces that month's rows. The logic is pipelines.delivery.job.check_month."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, get_current_context, task

from pipelines import assets, config, periods
from pipelines.airflow_ids import airflow_run_id
from pipelines.delivery.job import SCHEMAS, check_month

MONTH_CLOSED = Asset(assets.METER_MONTH_CLOSED)
OUTLETS = [Asset(assets.table(t)) for t in SCHEMAS]
OUTLETS.append(Asset("mayorista://lake/reports/delivery"))


@dag(
    dag_id="vpn_delivery_monthly",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 6 1 * *", timezone="America/Guatemala"), assets=MONTH_CLOSED
    ),
    start_date=pendulum.datetime(2026, 3, 1, tz="America/Guatemala"),
    catchup=True,
    max_active_runs=1,
    params={"month": Param(None, type=["null", "string"], description="YYYY-MM to review; empty = the previous month")},
    tags=["smec", "ncc-14"],
    doc_md=__doc__,
)
def vpn_delivery_monthly():
    @task
    def months() -> list[str]:
        ctx = get_current_context()
        extras = [event.extra for event in ctx["triggering_asset_events"].get(MONTH_CLOSED, [])]
        return periods.requested_periods(ctx["params"]["month"], extras, ctx.get("data_interval_start"), "month")

    @task(outlets=OUTLETS, max_active_tis_per_dag=1)  # one at a time across all runs, backfills included
    def review_month(month: str, **context) -> str:
        return check_month(month, config.landing_root() / "smec", run_id=airflow_run_id(context, month)).summary

    review_month.expand(month=months())


vpn_delivery_monthly()
