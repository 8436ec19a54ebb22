"""Monthly review of VPN changes and Direct@mm deliveries (NCC-14 numeral 14.10).

Runs at 06:00 Guatemala time on the 1st; its data interval is the previous month, which is the month
reviewed (a `month` param overrides it). Catch-up from the start date makes past months backfillable;
a re-run of a month replaces that month's rows. The logic is pipelines.delivery.job.check_month."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

OUTLETS = [
    Asset("mayorista://warehouse/vpn_change_review"),
    Asset("mayorista://warehouse/delivery_compliance"),
    Asset("mayorista://warehouse/delivery_points"),
    Asset("mayorista://warehouse/estimated_hourly"),
    Asset("mayorista://lake/reports/delivery"),
]


@dag(
    dag_id="vpn_delivery_monthly",
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone="America/Guatemala"),
    start_date=pendulum.datetime(2026, 3, 1, tz="America/Guatemala"),
    catchup=True,
    max_active_runs=1,
    params={"month": Param(None, type=["null", "string"], description="YYYY-MM to review; empty = the previous month")},
    tags=["smec", "ncc-14"],
    doc_md=__doc__,
)
def vpn_delivery_monthly():
    @task(outlets=OUTLETS)
    def review_month(params=None, data_interval_start=None, run_id=None) -> str:
        from pipelines import config
        from pipelines.delivery.job import check_month
        from pipelines.periods import resolve_period

        month = resolve_period((params or {}).get("month"), data_interval_start)
        return check_month(month, config.landing_root() / "smec", run_id=run_id).summary

    review_month()


vpn_delivery_monthly()
