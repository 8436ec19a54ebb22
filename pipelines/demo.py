"""`make demo`: run the project's DAGs end to end on the bundled sample data with real Airflow
(`airflow dags test`, SQLite metadata DB under AIRFLOW_HOME), then print what analysts would see.

Each step is a subprocess so that Airflow starts as it does for a user; the output of Airflow itself
goes to <AIRFLOW_HOME>/demo-logs/ and only the results are printed, each step with how long it took.
The NCC-11 steps are the four tariff quarters of 2026, so the annual Informe covers a whole year; the
last step compares quarter 2026-02's projection with the metered March and April (the ex-post)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipelines import config, summary

# (what, dag_id, logical date, run conf). The four tariff quarters of 2026, so that the annual Informe the
# NCC-11 DAG writes after each publish ends as a whole year; each run's logical date is the start of
# the next tariff quarter, as the schedule would run it (the band change of 2026-05-01 falls between
# the first two).
STEPS: list[tuple[str, str, str, dict]] = [
    *(
        (f"NCC-11 quarter {quarter}", "ncc11_quarterly", run_on, {"quarter": quarter})
        for quarter, run_on in (
            ("2026-02", "2026-05-01"),
            ("2026-05", "2026-08-01"),
            ("2026-08", "2026-11-01"),
            ("2026-11", "2027-02-01"),
        )
    ),
    # March first: April's delivery check estimates late consumption points from March's meter_hourly
    ("SMEC readings, March 2026", "meter_readings", "2026-03-31T01:00:00-06:00", {"month": "2026-03"}),
    ("SMEC readings, April 2026", "meter_readings", "2026-04-30T01:00:00-06:00", {"month": "2026-04"}),
    (
        "VPN changes and Direct@mm, April 2026",
        "vpn_delivery_monthly",
        "2026-05-01T06:00:00-06:00",
        {"month": "2026-04"},
    ),
    # the projection of quarter 2026-02 against March's and April's metering (February is not metered:
    # the report marks it); the DAG then writes the quarter's report and the 2026 Informe again
    ("Ex-post, NCC-11 quarter 2026-02", "ncc11_expost", "2026-05-01T07:00:00-06:00", {"quarter": "2026-02"}),
]


def _airflow() -> str:
    return shutil.which("airflow") or str(Path(sys.executable).with_name("airflow"))


def _step(what: str, seconds: float, status: str = "ok", detail: str = "") -> None:
    print(f"{status:6} {what:38} {seconds:6.1f} s  {detail}".rstrip(), flush=True)


def main() -> int:
    began = time.perf_counter()
    logs = Path(os.environ.get("AIRFLOW_HOME", config.ROOT / ".airflow")) / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
    print("Each step and how long it took:", flush=True)
    for step, (what, dag_id, logical_date, conf) in enumerate(STEPS, start=1):
        log = logs / f"{step}-{dag_id}.log"
        start = time.perf_counter()
        with open(log, "w") as fh:
            done = subprocess.run(
                [_airflow(), "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        failed = done.returncode != 0 or "state=failed" in log.read_text()
        _step(what, time.perf_counter() - start, "FAILED" if failed else "ok", f"DAG {dag_id:21} log: {log}")
        if failed:
            print(log.read_text()[-3000:], file=sys.stderr)
            return 1
    start = time.perf_counter()
    # the DAGs wrote the NCC-11 reports, the Informe and the letters; the meters DAG's report is written here
    from pipelines.periods import Month
    from pipelines.reports import meters, pdf

    for month in ("2026-03", "2026-04"):
        meters.render(Month.parse(month))
    _step("metering reports, March and April 2026", time.perf_counter() - start)
    start = time.perf_counter()
    text = summary.render()
    _step("summary of the warehouse", time.perf_counter() - start)
    print(f"{'':6} {'total':38} {time.perf_counter() - began:6.1f} s")
    print(text)
    print(
        f"\nResults: warehouse (DuckLake catalog) {config.warehouse()}, data files and reports under {config.lake_root()}"
    )
    print("Reports (self-contained HTML, and its PDF, US Letter):")
    reports = Path(config.lake_root()) / "reports"
    why = pdf.unavailable()
    for path in sorted(reports.rglob("*.html")):
        has_pdf = path.with_suffix(".pdf").exists()
        print(f"  {path}" + ("  (+ .pdf)" if has_pdf else f"  (no PDF: {why or 'printing failed, see the step logs'})"))
    print(
        "Re-render any of them as a past run published it: .venv/bin/mayorista report ncc11 --quarter 2026-05 --as-of RUN_ID"
    )
    print(
        "Query them:  .venv/bin/mayorista sql \"FROM ncc11_energy WHERE quarter = '2026-05'\"   "
        "(or `.venv/bin/mayorista sql` for a session; `.venv/bin/mayorista history ncc11 --period 2026-05`)"
    )
    print(
        "The ex-post (projection against metering): .venv/bin/mayorista expost --quarter 2026-02   "
        "(.venv/bin/mayorista sql \"FROM ncc11_expost WHERE quarter = '2026-02'\")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
