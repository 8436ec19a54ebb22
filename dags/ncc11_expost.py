"""Ex-post of the NCC-11 projection: each quarter's projected energy against the metered energy,
per month, distributor and band (pipelines.ncc11.expost, exactly what `mayorista expost` runs).

Runs as soon as meter_readings announces a metering month closed (the asset event the delivery check
also uses, extra {"month": ...}): the published NCC-11 quarter(s) holding that month are re-run, so each
month appears once its metering is in. Also on the 1st of each month at 07:00 Guatemala time for the
previous month (the data interval; what `airflow backfill create` walks), and on demand with a
`quarter` param. A re-run replaces the quarter's rows. After each publish, the quarter's report and its
tariff year's Informe are written again as of that snapshot: their ex-post section shows the new month."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from pipelines import assets, periods
from pipelines.airflow_ids import airflow_run_id
from pipelines.ncc11 import expost

MONTH_CLOSED = Asset(assets.METER_MONTH_CLOSED)
OUTLETS = [Asset(uri) for uri in assets.outlets("expost")]
OUTLETS.append(Asset("mayorista://lake/reports/ncc11"))


@dag(
    dag_id="ncc11_expost",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 7 1 * *", timezone=periods.GUATEMALA.key), assets=MONTH_CLOSED
    ),
    start_date=pendulum.datetime(2026, 3, 1, tz=periods.GUATEMALA.key),
    catchup=False,
    max_active_runs=1,
    params={"quarter": Param(None, type=["null", "string"], description="YYYY-MM, first month of the quarter")},
    tags=["ncc11", "smec"],
    doc_md=__doc__,
)
def ncc11_expost():
    @task
    def quarters(params=None, triggering_asset_events=None, data_interval_start=None) -> list[str]:
        if params["quarter"]:
            return [periods.Quarter.parse(params["quarter"]).label]
        extras = [event.extra for event in (triggering_asset_events or {}).get(MONTH_CLOSED, [])]
        months = periods.requested_periods(None, extras, data_interval_start, "month")
        return expost.quarters_holding(months)

    @task(outlets=OUTLETS, max_active_tis_per_dag=1)  # one at a time across all runs, backfills included
    def run_quarter(quarter: str, **context) -> str:
        q = periods.Quarter.parse(quarter)  # XCom carries text: the one parse on this side of it
        result = expost.run(q, run_id=airflow_run_id(context, quarter))
        print(result.summary)
        from pipelines.reports import ncc11 as reports

        for files in reports.render(q, snapshot=result.snapshot_id):
            print("report:", files.describe())
        return result.summary

    run_quarter.expand(quarter=quarters())


ncc11_expost()
