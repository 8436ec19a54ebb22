"""The table registry: every table the pipelines publish, declared ONCE (PUDL's resource metadata):
its columns and types, the columns its data files are partitioned by, who publishes it, its Airflow
asset, one line of doc. Writes take their partition from here (`Write` refuses another), a table's
replacement write is built here (`table(name).replace(rows, period)`), frames are typed by it
(`typed`, `empty`), the DAGs' outlets come from it (pipelines.assets) and tests read it.

Adding a table is one entry in TABLES (docs/warehouse.md, "Adding a table"). The contracts in
shared/contracts/ are the reference for names and columns; a test compares this declaration with
what the runs publish (tests/test_lake_uri.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from pipelines.warehouse.writes import Rows, Write

_S, _I, _F, _B, _D = pl.String, pl.Int64, pl.Float64, pl.Boolean, pl.Date
_TS = pl.Datetime("us")


def asset_uri(name: str) -> str:
    """A warehouse table as an Airflow asset."""
    return f"mayorista://warehouse/{name}"


@dataclass(frozen=True)
class Table:
    """A published table. `partition`: the columns DuckLake lays its data files out by (a run's period,
    the column its rows are replaced by); empty for a table replaced by other keys (metering_points by
    its source file, landed_files by path). `columns`: name -> polars type, in the table's order."""

    name: str
    pipeline: str  # ncc11 | expost | meters | delivery | runs (written by every run)
    partition: tuple[str, ...]
    doc: str
    columns: dict[str, pl.DataType] = field(default_factory=dict, hash=False, compare=False)

    @property
    def uri(self) -> str:
        return asset_uri(self.name)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return dict(self.columns)

    def empty(self) -> pl.DataFrame:
        """No rows, the declared columns and types (a replacement that removes a period's rows)."""
        return pl.DataFrame(schema=self.columns)

    def typed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """`frame`'s declared columns, in order, cast to their types (an empty first period must not
        create a column of type null)."""
        return frame.select(pl.col(c).cast(t) for c, t in self.columns.items())

    def replace(self, rows: Rows, period: str, **options: Any) -> Write:
        """The write replacing `period`'s rows (the partition column = period) with `rows`; `options`
        are Write's (adopt, append, delete_keys)."""
        from pipelines.warehouse.writes import Write

        if len(self.partition) != 1:
            raise ValueError(f"{self.name} is not replaced by one period column (partition {self.partition})")
        return Write(self.name, rows, {self.partition[0]: period}, **options)


def _t(name: str, pipeline: str, partition: str | None, doc: str, /, **columns: pl.DataType) -> Table:
    return Table(name, pipeline, (partition,) if partition else (), doc, columns)


_METER_KEY = {"point_id": _S, "participant": _S}
TABLES = (
    # --- NCC-11 (quarterly) -----------------------------------------------------------------------
    _t(
        "ncc11_energy", "ncc11", "quarter", "CCS, PESTE (11.3), CCC (11.4), PMCE (11.5) per distributor and band",
        quarter=_S, distributor=_S, band=_S, spot_energy_mwh=_F, ccs_usd=_F, peste_usd_mwh=_F,
        contract_energy_mwh=_F, ccc_usd=_F, total_demand_mwh=_F, pmce_usd_mwh=_F,
    ),
    _t(
        "ncc11_energy_month", "ncc11", "quarter", "the energy projection per month, distributor and band",
        quarter=_S, month=_S, distributor=_S, band=_S, total_demand_mwh=_F, spot_energy_mwh=_F,
        contract_energy_mwh=_F, ccs_usd=_F, ccc_usd=_F,
    ),
    _t(
        "ncc11_power_month", "ncc11", "quarter", "CCP per month (11.6)",
        quarter=_S, month=_S, distributor=_S, ccp_usd=_F, contract_power_kw=_F, contract_cost_usd=_F,
        dfnc_kw=_F, demax_kw=_F, prefpot_usd_kw_month=_F,
    ),
    _t(
        "ncc11_power", "ncc11", "quarter", "CCP per quarter (11.6) and SCP (11.7)",
        quarter=_S, distributor=_S, ccp_usd=_F, demax_kw_sum=_F, scp_usd=_F, prefpot_usd_kw_month=_F,
    ),
    _t(
        "ncc11_total_cost", "ncc11", "quarter", "total cost per distributor and month (11.1), with other_costs",
        quarter=_S, month=_S, distributor=_S, ccc_usd=_F, ccs_usd=_F, ccp_usd=_F, other_usd=_F, total_usd=_F,
    ),
    # --- ex-post (per quarter, when a metering month closes) ---------------------------------------
    _t(
        "ncc11_expost", "expost", "quarter", "projected against metered energy per month, distributor and band",
        quarter=_S, month=_S, distributor=_S, band=_S, projected_mwh=_F, metered_mwh=_F, deviation_mwh=_F,
        deviation_pct=_F, pmce_usd_mwh=_F, deviation_usd=_F, points=pl.Int32, completeness_pct=_F, estimated_pct=_F,
    ),
    # --- metering (daily, per month) ----------------------------------------------------------------
    _t(
        "meter_readings", "meters", "month", "the current real 15-minute readings, with file and run",
        month=_S, participant=_S, point_id=_S, channel=_S, interval_end=_TS, value=_F, source_file=_S, run_id=_S,
    ),
    _t(
        "meter_readings_superseded", "meters", "month", "readings replaced by a later landing",
        month=_S, participant=_S, point_id=_S, channel=_S, interval_end=_TS, value=_F, source_file=_S, source_run=_S,
        superseded_by_file=_S, superseded_by_run=_S, superseded_at=_TS,
    ),
    _t(
        "meter_estimates", "meters", "month", "every estimate version (linear, like_day), superseded ones kept",
        month=_S, participant=_S, point_id=_S, channel=_S, interval_end=_TS, value=_F, method=_S, run_id=_S,
        estimated_at=_TS, superseded_by_run=_S, superseded_at=_TS, superseded_reason=_S,
    ),
    _t(
        "meter_completeness", "meters", "month", "expected and received intervals per point and channel",
        **_METER_KEY, kind=_S, month=_S, channel=_S, expected_intervals=_I, received_intervals=_I,
        completeness_pct=_F,
    ),
    _t(
        "meter_hourly", "meters", "month", "hourly values with quality complete/partial/estimated",
        **_METER_KEY, month=_S, hour=_TS, channel=_S, value=_F, quality=_S, real_intervals=pl.Int32,
        estimated_intervals=pl.Int32,
    ),
    _t(
        "vee_findings", "meters", "month", "one row per VEE finding, with its rule",
        **_METER_KEY, month=_S, interval_end=_TS, channel=_S, rule=_S, detail=_S, value=_F,
    ),
    _t(
        "quarantine", "meters", "month", "rows that cannot be used, with file, line, raw values and reason",
        month=_S, source_file=_S, line=_I, raw_device_id=_S, raw_interval_end=_S, raw_channel=_S, raw_value=_S,
        reason=_S,
    ),
    # replaced by the registry file it was read from (source_file), not by month
    _t(
        "metering_points", "meters", None, "the registry as read by the run",
        **_METER_KEY, kind=_S, node=_S, device_id=_S, serial=_S, connectivity=_S, vpn_id=_S, public_ip=_S,
        public_port=_I, private_ip=_S, private_port=_I, valid_from=_D, valid_to=_D, source_file=_S,
    ),
    # one row per file version and month it holds; rows are replaced by path (pipelines.metering.ledger)
    _t(
        "landed_files", "meters", None, "the ledger of landed readings files",
        path=_S, sha256=_S, size_bytes=_I, modified_at=_TS, month=_S, rows=_I, first_interval=_TS,
        last_interval=_TS, first_seen_at=_TS, run_id=_S, status=_S, reason=_S,
    ),
    # --- VPN delivery (monthly) ---------------------------------------------------------------------
    # `detail` / `reason`: the evidence in English for analysts (the contract's columns); `detail_key`
    # + `detail_args` / `reason_key` + `reason_args`: the same without words (a key of the reports'
    # [evidence] catalogue and a JSON object of its values), which the letters word in their language
    _t(
        "vpn_change_review", "delivery", "month", "each VPN change against each rule (NCC-14)",
        month=_S, change_id=_S, participant=_S, rule=_S, ok=_B, detail=_S, detail_key=_S, detail_args=_S, line=_I,
    ),
    _t(
        "delivery_compliance", "delivery", "month", "Direct@mm delivery within 2 calendar days, per change",
        month=_S, change_id=_S, participant=_S, supply_month=_S, notified_on=_D, deadline=_D, required_points=_I,
        on_time_points=_I, late_points=_I, missing_points=_I, compliant=_B,
    ),
    _t(
        "delivery_points", "delivery", "month", "each required point's delivery status",
        month=_S, change_id=_S, participant=_S, point_id=_S, kind=_S, status=_S, received_at=_TS, deliveries=_I,
        deadline=_D, estimation=_S, estimation_key=_S, estimation_args=_S,
    ),
    _t(
        "estimated_hourly", "delivery", "month", "hourly estimates for points not delivered",
        month=_S, point_id=_S, hour=_TS, kwh=_F, method=_S, basis_hour=_TS, basis_kwh=_F,
    ),
    _t(
        "delivery_unreadable_rows", "delivery", "month", "input rows that could not be read, with line and reason",
        month=_S, source=_S, line=_I, participant=_S, reason=_S, reason_key=_S, reason_args=_S,
    ),
    # the month's changes with their dates as given (text: a date that does not parse is shown as
    # written) and the effective date the rules used: what a letter's table of dates shows, so a
    # letter re-rendered from the warehouse is the one the run wrote
    _t(
        "vpn_changes", "delivery", "month", "the month's VPN changes with their dates, as the letters show them",
        month=_S, change_id=_S, participant=_S, vpn_id=_S, letter_date=_S, proposed_date=_S, effective_date=_S,
        medicion_approved_on=_S, tecnologia_approved_on=_S, executed_on=_S, notified_on=_S, line=_I,
    ),
    # --- every run ----------------------------------------------------------------------------------
    _t(
        "validation_results", "runs", "period", "every data-quality check of every run, failed runs included",
        run_id=_S, pipeline=_S, period=_S, source=_S, check=_S, column=_S, severity=_S, success=_B,
        unexpected_count=_I, detail=_S, checked_at=_TS,
    ),
    _t(
        "run_manifests", "runs", None, "one row per run: status, snapshot, the JSON manifest",
        run_id=_S, pipeline=_S, period=_S, started_at=_TS, finished_at=_TS, status=_S, snapshot_id=_I, manifest=_S,
    ),
)  # fmt: skip
BY_NAME = {t.name: t for t in TABLES}
PIPELINES = ("ncc11", "expost", "meters", "delivery")


def table(name: str) -> Table:
    """The declaration of `name` (KeyError for a table nobody declared)."""
    return BY_NAME[name]


def of(pipeline: str) -> Iterator[Table]:
    """The tables `pipeline` publishes, in declaration order."""
    return (t for t in TABLES if t.pipeline == pipeline)
