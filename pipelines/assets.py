"""The URIs of the Airflow Assets that connect the pipelines (the DAG files wrap them in `Asset`).

programming inputs land ──> ncc11_quarterly ──> ncc11_* tables
meter_readings ──> meter tables, the month's metering report;
                   on a month's last day ──> meter month closed ──> vpn_delivery_monthly
                                                                ──> ncc11_expost (the quarter holding it)
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Table:
    """A published table: who publishes it, the column a run replaces it by, and one line of doc.
    Columns and types live with the code that builds the table (delivery.job.SCHEMAS, the metering
    stores, the SQL in sql/); the contracts in shared/contracts/ are the reference."""

    name: str
    pipeline: str  # ncc11 | expost | meters | delivery
    partition: str  # the column a run's rows are replaced by
    doc: str

    @property
    def uri(self) -> str:
        return table(self.name)


# every table a pipeline publishes (run_manifests and validation_results are written by every run)
TABLES = (
    Table("ncc11_energy", "ncc11", "quarter", "CCS, PESTE (11.3), CCC (11.4), PMCE (11.5) per distributor and band"),
    Table("ncc11_energy_month", "ncc11", "quarter", "the energy projection per month, distributor and band"),
    Table("ncc11_power_month", "ncc11", "quarter", "CCP per month (11.6)"),
    Table("ncc11_power", "ncc11", "quarter", "CCP per quarter (11.6) and SCP (11.7)"),
    Table("ncc11_total_cost", "ncc11", "quarter", "total cost per distributor and month (11.1), with other_costs"),
    Table("ncc11_expost", "expost", "quarter", "projected against metered energy per month, distributor and band"),
    Table("meter_readings", "meters", "month", "the current real 15-minute readings, with file and run"),
    Table("meter_readings_superseded", "meters", "month", "readings replaced by a later landing"),
    Table("meter_estimates", "meters", "month", "every estimate version (linear, like_day), superseded ones kept"),
    Table("meter_completeness", "meters", "month", "expected and received intervals per point and channel"),
    Table("meter_hourly", "meters", "month", "hourly values with quality complete/partial/estimated"),
    Table("vee_findings", "meters", "month", "one row per VEE finding, with its rule"),
    Table("quarantine", "meters", "month", "rows that cannot be used, with file, line, raw values and reason"),
    Table("metering_points", "meters", "month", "the registry as read by the run"),
    Table("landed_files", "meters", "month", "the ledger of landed readings files"),
    Table("vpn_change_review", "delivery", "month", "each VPN change against each rule (NCC-14)"),
    Table("delivery_compliance", "delivery", "month", "Direct@mm delivery within 2 calendar days, per change"),
    Table("delivery_points", "delivery", "month", "each required point's delivery status"),
    Table("estimated_hourly", "delivery", "month", "hourly estimates for points not delivered"),
    Table("delivery_unreadable_rows", "delivery", "month", "input rows that could not be read, with line and reason"),
    Table("vpn_changes", "delivery", "month", "the month's VPN changes with their dates, as the letters show them"),
)
BY_NAME = {t.name: t for t in TABLES}


def outlets(pipeline: str) -> list[str]:
    """The asset URIs of every table `pipeline` publishes: what its DAG declares as outlets."""
    return [t.uri for t in TABLES if t.pipeline == pipeline]
