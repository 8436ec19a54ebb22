"""NCC-11 quarterly wholesale cost report: read + validate -> compute -> publish, per quarter.

Runs on the tariff-quarter schedule (Feb/May/Aug/Nov) AND whenever new programming inputs land: an
asset event on `mayorista://landing/ncc11` whose extra names the quarter ({"quarter": "2026-05"}).
The quarters a run covers: the `quarter` param if given (backfills, reruns); else those named by
the triggering asset events; else the month in which its data interval starts. Each quarter is a
mapped task running pipelines.ncc11.job.run, exactly what `mayorista ncc11` runs, then writing the
quarter's report and its tariff year's Informe as of the snapshot it published (pipelines.reports.ncc11)."""

from __future__ import annotations

from datetime import datetime

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from pipelines import assets, config, periods
from pipelines.airflow_ids import airflow_run_id
from pipelines.ncc11 import job

GT = pendulum.timezone(periods.GUATEMALA.key)
PROGRAMMING_INPUTS = Asset(assets.PROGRAMMING_INPUTS)
NCC11_TABLES = [Asset(uri) for uri in assets.outlets("ncc11")]  # ncc11_total_cost too


@dag(
    dag_id="ncc11_quarterly",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 0 1 2,5,8,11 *", timezone=GT), assets=PROGRAMMING_INPUTS
    ),
    start_date=datetime(2025, 2, 1, tzinfo=GT),
    catchup=False,
    params={
        "quarter": Param(None, type=["null", "string"], description="first month of the quarter, YYYY-MM"),
        "input_dir": Param(None, type=["null", "string"], description="default <landing>/ncc11/<quarter>"),
    },
    tags=["ncc11"],
    doc_md=__doc__,
)
def ncc11_quarterly():
    @task
    def quarters(params=None, triggering_asset_events=None, data_interval_start=None) -> list[str]:
        extras = [event.extra for event in (triggering_asset_events or {}).get(PROGRAMMING_INPUTS, [])]
        # asset-triggered runs have no data interval: their events name the quarter
        return periods.requested_periods(params["quarter"], extras, data_interval_start, "quarter")

    # the same code path as `mayorista ncc11`; writers run one at a time across all runs, backfills included
    @task(outlets=NCC11_TABLES, max_active_tis_per_dag=1)
    def run_quarter(quarter: str, **context) -> dict[str, int]:
        q = periods.Quarter.parse(quarter)  # the edge: parsed once, passed down as a value
        input_dir = context["params"]["input_dir"] or config.Settings.resolve().inputs("ncc11", q.label)
        result = job.run(q, input_dir, run_id=airflow_run_id(context, quarter))
        print(result.summary)
        # after the commit, from what was published: the report and the annual Informe (HTML + PDF),
        # through the entry `mayorista report ncc11` calls
        from pipelines.reports import ncc11 as reports

        for files in reports.render(q, snapshot=result.snapshot_id):
            print("report:", files.describe())
        return result.rows

    run_quarter.expand(quarter=quarters())


ncc11_quarterly()
