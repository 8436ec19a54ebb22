"""The URIs of the Airflow Assets that connect the pipelines (the DAG files wrap them in `Asset`).

programming inputs land ──> ncc11_quarterly ──> ncc11_* tables
meter_readings ──> meter tables, the month's metering report;
                   on a month's last day ──> meter month closed ──> vpn_delivery_monthly
                                                                ──> ncc11_expost (the quarter holding it)
"""

from __future__ import annotations

from pipelines.warehouse import registry

# an upstream system (or a person) posts an event with extra {"quarter": "YYYY-MM"} when the long-term
# programming outputs of a quarter land in <landing>/ncc11/<quarter>/
PROGRAMMING_INPUTS = "mayorista://landing/ncc11"
# emitted by meter_readings, extra {"month": "YYYY-MM"}, once the month's last day has been ingested
METER_MONTH_CLOSED = "mayorista://smec/meter_month_closed"
# the metering month reports (<lake>/reports/meters/month=M/), written by meter_readings after each ingest
METER_REPORTS = "mayorista://lake/reports/meters"


def table(name: str) -> str:
    """A warehouse table as an asset."""
    return registry.asset_uri(name)


# every table a pipeline publishes, as the warehouse's registry declares it (run_manifests and
# validation_results, written by every run, are not any pipeline's outlet)
Table = registry.Table
TABLES = tuple(t for t in registry.TABLES if t.pipeline in registry.PIPELINES)
BY_NAME = {t.name: t for t in TABLES}


def outlets(pipeline: str) -> list[str]:
    """The asset URIs of every table `pipeline` publishes: what its DAG declares as outlets."""
    return [t.uri for t in registry.of(pipeline)]
