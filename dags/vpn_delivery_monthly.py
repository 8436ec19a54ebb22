"""Monthly review of VPN changes and Direct@mm deliveries (NCC-14 numeral 14.10).

Runs at 06:00 Guatemala time on the 1st; its data interval is the previous month, which is the month
reviewed (a `month` param overrides it). It also runs as soon as meter_readings announces a month
closed (asset event with extra {"month": ...}): that month is reviewed. Catch-up from the start date makes past months backfillable;
a re-run of a month replaces that month's rows. The logic is pipelines.delivery.job.check_month."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from pipelines import assets, config, periods
from pipelines.airflow_ids import airflow_run_id
from pipelines.delivery.job import check_month

MONTH_CLOSED = Asset(assets.METER_MONTH_CLOSED)
OUTLETS = [Asset(uri) for uri in assets.outlets("delivery")]  # delivery_unreadable_rows too
OUTLETS.append(Asset("mayorista://lake/reports/delivery"))


@dag(
    dag_id="vpn_delivery_monthly",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 6 1 * *", timezone=periods.GUATEMALA.key), assets=MONTH_CLOSED
    ),
    start_date=pendulum.datetime(2026, 3, 1, tz=periods.GUATEMALA.key),
    catchup=True,
    max_active_runs=1,
    params={"month": Param(None, type=["null", "string"], description="YYYY-MM to review; empty = the previous month")},
    tags=["smec", "ncc-14"],
    doc_md=__doc__,
)
def vpn_delivery_monthly():
    @task
    def months(params=None, triggering_asset_events=None, data_interval_start=None) -> list[str]:
        extras = [event.extra for event in (triggering_asset_events or {}).get(MONTH_CLOSED, [])]
        return periods.requested_periods(params["month"], extras, data_interval_start, "month")

    @task(outlets=OUTLETS, max_active_tis_per_dag=1)  # one at a time across all runs, backfills included
    def review_month(month: str, **context) -> str:
        return check_month(
            periods.Month.parse(month),
            config.Settings.resolve().inputs("delivery"),
            run_id=airflow_run_id(context, month),
        ).summary

    review_month.expand(month=months())


vpn_delivery_monthly()
