"""`make demo`: run the project's DAGs end to end on the bundled sample data with real Airflow
(`airflow dags test`, SQLite metadata DB under AIRFLOW_HOME), then print what analysts would see.

Each step is a subprocess so that Airflow starts as it does for a user; the output of Airflow itself
goes to <AIRFLOW_HOME>/demo-logs/ and only the results are printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipelines import config, summary

# (what, dag_id, logical date, run conf)
STEPS: list[tuple[str, str, str, dict]] = [
    ("NCC-11 quarter 2026-05", "ncc11_quarterly", "2026-08-01", {"quarter": "2026-05"}),
    # March first: April's delivery check estimates late consumption points from March's meter_hourly
    ("SMEC readings, March 2026", "meter_readings", "2026-03-31T01:00:00-06:00", {"month": "2026-03"}),
    ("SMEC readings, April 2026", "meter_readings", "2026-04-30T01:00:00-06:00", {"month": "2026-04"}),
    (
        "VPN changes and Direct@mm, April 2026",
        "vpn_delivery_monthly",
        "2026-05-01T06:00:00-06:00",
        {"month": "2026-04"},
    ),
]


def _airflow() -> str:
    return shutil.which("airflow") or str(Path(sys.executable).with_name("airflow"))


def main() -> int:
    logs = Path(os.environ.get("AIRFLOW_HOME", config.ROOT / ".airflow")) / "demo-logs"
    logs.mkdir(parents=True, exist_ok=True)
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
        print(
            f"{'FAILED' if failed else 'ok':6} {what:38} DAG {dag_id:21} {time.perf_counter() - start:5.1f} s  log: {log}"
        )
        if failed:
            print(log.read_text()[-3000:], file=sys.stderr)
            return 1
    print(summary.render())
    print(
        f"\nResults: warehouse (DuckLake catalog) {config.warehouse()}, data files and reports under {config.lake_root()}"
    )
    # the DAGs wrote the NCC-11 report, the Informe and the letters; the meters DAG's report is written here
    from pipelines.reports import meters

    for month in ("2026-03", "2026-04"):
        meters.render(month)
    print("Reports (self-contained HTML, and PDF when Chromium is installed):")
    reports = Path(config.lake_root()) / "reports"
    for path in sorted(reports.rglob("*.html")):
        pdf = path.with_suffix(".pdf")
        print(
            f"  {path}"
            + ("  (+ .pdf)" if pdf.exists() else "  (no PDF: Chromium not installed, apt-get install chromium)")
        )
    print(
        "Re-render any of them as a past run published it: uv run mayorista report ncc11 --quarter 2026-05 --as-of RUN_ID"
    )
    print(
        "Query them:  uv run mayorista sql \"FROM ncc11_energy WHERE quarter = '2026-05'\"   "
        "(or `uv run mayorista sql` for a session; `uv run mayorista history ncc11 --period 2026-05`)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
