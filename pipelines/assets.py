"""The URIs of the Airflow Assets that connect the pipelines (the DAG files wrap them in `Asset`).

    programming inputs land ──> ncc11_quarterly ──> ncc11_* tables
    meter_readings ──> meter tables, the month's metering report;
                       on a month's last day ──> meter month closed ──> vpn_delivery_monthly
"""

from __future__ import annotations

# an upstream system (or a person) posts an event with extra {"quarter": "YYYY-MM"} when the long-term
# programming outputs of a quarter land in <landing>/ncc11/<quarter>/
PROGRAMMING_INPUTS = "mayorista://landing/ncc11"
# emitted by meter_readings, extra {"month": "YYYY-MM"}, once the month's last day has been ingested
METER_MONTH_CLOSED = "mayorista://smec/meter_month_closed"
# the metering month reports (<lake>/reports/meters/month=M/), written by meter_readings after each ingest
METER_REPORTS = "mayorista://lake/reports/meters"


def table(name: str) -> str:
    """A warehouse table as an asset."""
    return f"mayorista://warehouse/{name}"
