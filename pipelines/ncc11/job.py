"""The quarterly NCC-11 run, the one code path of `mayorista ncc11` and the `ncc11_quarterly` DAG:

    read + validate   the programming files, typed strictly, checked by the GX suites
    compute           CCS/PESTE/CCC/PMCE (per quarter and per month) and CCP/SCP (sql/ncc11_*.sql),
                      while GX still validates
    publish           ONE warehouse transaction replacing the quarter's rows (pipelines.run)

Nothing is published until every step has succeeded, so a failed run leaves the quarter's previous
results as they were (and is recorded as failed); a re-run replaces them, and the replaced figures
stay readable as of their snapshot."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import polars as pl

from pipelines import bands, landing_zone, periods, quality, warehouse
from pipelines import run as runs
from pipelines.errors import InputError
from pipelines.manifest import file_sha256
from pipelines.ncc11 import checks, formulas
from pipelines.ncc11.inputs import Ncc11Inputs, load
from pipelines.warehouse import registry

logger = logging.getLogger(__name__)

PIPELINE = "ncc11"
T = TypeVar("T")
TOTAL_COST = "ncc11_total_cost"  # published when the optional other_costs file is given (11.1)
# every run publishes these (the registry's ncc11 tables but the optional total cost)
OUTPUT_TABLES = tuple(t.name for t in registry.of(PIPELINE) if t.name != TOTAL_COST)


@dataclass
class RunResult:
    quarter: str
    run_id: str
    snapshot_id: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[quality.CheckResult] = field(default_factory=list)
    summary: str = ""


def _checked_inputs(
    r: runs.Run, quarter: periods.Quarter, input_dir: Path, ahead: Callable[[Ncc11Inputs], T]
) -> tuple[Ncc11Inputs, T]:
    """Read and validate a quarter's inputs (the results go to `r.validation`).

    GX is imported in the background from the start. Meanwhile the files are read and the frames the
    suites check are computed, and `ahead(inputs)` runs in a worker thread (polars, DuckDB and
    hashing release the GIL; the GX import and GX itself mostly hold it). `ahead`'s result is
    returned only if validation passes."""
    manifest = r.manifest
    gx_ready = quality.warm(*checks.SUITES)
    input_dir = landing_zone.local_inputs(landing_zone.location(input_dir), r.scratch)  # s3://: copied to scratch
    if not Path(input_dir).is_dir():
        raise InputError(f"input directory {input_dir} does not exist")
    with manifest.step("read"):
        inputs = load(Path(input_dir), quarter)
    with ThreadPoolExecutor(max_workers=3) as pool:
        future = pool.submit(ahead, inputs)
        hashed = [
            pool.submit(manifest.add_input, path, inputs.frames[name].height) for name, path in inputs.files.items()
        ]
        with manifest.step("profile"):
            planned = checks.plan_checks(inputs)
        with manifest.step("await_gx_import"):
            gx_ready.join()
        with manifest.step("validate"):
            r.validation = checks.run_planned(planned)
        quality.raise_on_errors(r.validation)
        early = future.result()
        for done in hashed:
            done.result()
    # the configuration the figures depend on is an input too: the band calendar decides which hour
    # is punta, intermedia or valle (hashed, so the provenance shows which calendar made the figures)
    band_calendar = bands.calendar_path()
    manifest.inputs.append(
        {
            "file": f"config/{band_calendar.name}",
            "sha256": file_sha256(band_calendar),
            "bytes": band_calendar.stat().st_size,
            "rows": len(band_calendar.read_text(encoding="utf-8").splitlines()) - 1,  # less the header
        }
    )
    manifest.inputs.sort(key=lambda entry: entry["file"])
    manifest.counts["programming_by_blocks"] = int(inputs.mode == "block")
    manifest.counts["warnings"] = sum(1 for c in r.validation if not c.success)
    return inputs, early


def compute(inputs: Ncc11Inputs) -> dict[str, pl.DataFrame]:
    """The output tables from validated inputs (ncc11_total_cost only when other_costs is given)."""
    f, q = inputs.frames, inputs.quarter
    if inputs.mode == "block":
        slots = formulas.block_slots(f["blocks"])
    else:
        slots = formulas.hourly_slots(*q.bounds)
    energy = formulas.energy_table(
        q,
        f["nodal_prices"],
        f["spot_demand"],
        f["contract_dispatch"],
        f["total_demand"],
        slots,
        time_col=inputs.time_col,
    )
    energy_month = formulas.energy_month_table(
        q,
        f["nodal_prices"],
        f["spot_demand"],
        f["contract_dispatch"],
        f["total_demand"],
        slots,
        time_col=inputs.time_col,
    )
    prefpot = inputs.prefpot()
    power_month = formulas.power_month_table(q, f["power_contracts"], f["firm_demand"], prefpot)
    tables = {
        "ncc11_energy": energy,
        "ncc11_energy_month": energy_month,  # the projection per month, which the ex-post compares with metering
        "ncc11_power_month": power_month,
        "ncc11_power": formulas.power_table(q, power_month, prefpot),
    }
    if "other_costs" in f:
        tables[TOTAL_COST] = formulas.total_cost_table(
            q,
            f["nodal_prices"],
            f["spot_demand"],
            f["contract_dispatch"],
            slots,
            power_month,
            f["other_costs"],
            time_col=inputs.time_col,
        )
    return tables


def run(
    quarter: periods.Quarter | str,
    input_dir: Path,
    *,
    warehouse: warehouse.Where = None,
    lake_root: str | Path | None = None,
    run_id: str | None = None,
) -> RunResult:
    """The whole quarter, from the CLI and from the DAG alike (both parse it: a label is accepted for
    callers such as tests; a malformed one fails here, before anything is read)."""
    q = periods.Quarter.of(quarter)
    quarter = q.label  # what is stored (partition, manifest) and printed
    with runs.start(PIPELINE, quarter, run_id=run_id, warehouse=warehouse, lake_root=lake_root) as r:

        def computed(inputs: Ncc11Inputs) -> dict[str, pl.DataFrame]:
            with r.step("transform"):
                return compute(inputs)

        _, outputs = _checked_inputs(r, q, input_dir, computed)
        writes = [registry.table(name).replace(frame, quarter) for name, frame in outputs.items()]
        if TOTAL_COST not in outputs and _published(r.settings, TOTAL_COST):
            # re-run without other_costs: the quarter's earlier totals no longer hold (an empty replacement)
            writes.append(registry.table(TOTAL_COST).replace(registry.table(TOTAL_COST).empty(), quarter))
        r.publish(writes)
    result = RunResult(
        quarter=quarter,
        run_id=r.run_id,
        snapshot_id=r.snapshot_id,
        rows={t: f.height for t, f in outputs.items()},
        warnings=[c for c in r.validation if not c.success],
    )
    result.summary = summary(
        quarter, r.settings, snapshot_id=r.snapshot_id, run_id=r.run_id, rows=result.rows, warnings=result.warnings
    )
    return result


def _published(where: warehouse.Where, table: str) -> bool:
    """Whether the warehouse holds `table` (False when there is no warehouse yet)."""
    with warehouse.open_reader(where, missing_ok=True) as src:
        return src.has(table)


def summary(
    quarter: str,
    where: warehouse.Where = None,
    *,
    snapshot_id: int | None = None,
    run_id: str = "",
    rows: dict[str, int] | None = None,
    warnings: list[quality.CheckResult] = (),
) -> str:
    """The quarter's figures as published by `snapshot_id` (default: the current snapshot)."""
    with warehouse.open_reader(where, snapshot_id=snapshot_id) as src:
        energy = src.frame(
            "SELECT distributor, band, round(ccs_usd)::BIGINT AS ccs_usd, round(peste_usd_mwh, 2) AS peste, "
            "round(ccc_usd)::BIGINT AS ccc_usd, round(pmce_usd_mwh, 2) AS pmce FROM {e} WHERE quarter = ? "
            "ORDER BY distributor, CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END",
            [quarter],
            e="ncc11_energy",
        )
        power = src.frame(
            "SELECT distributor, round(ccp_usd)::BIGINT AS ccp_usd, round(demax_kw_sum)::BIGINT AS demax_kw_sum, "
            "round(scp_usd)::BIGINT AS scp_usd FROM {p} WHERE quarter = ? ORDER BY distributor",
            [quarter],
            p="ncc11_power",
        )
    lines = [
        f"NCC-11 quarter {quarter} published (run {run_id}, snapshot {snapshot_id})"
        if run_id
        else f"NCC-11 quarter {quarter} as of snapshot {snapshot_id if snapshot_id is not None else '(current)'}"
    ]
    if rows:
        lines.append(f"  rows: {', '.join(f'{t}={n}' for t, n in rows.items())}")
    lines.append(f"  warnings: {len(warnings)}")
    lines += [f"    - {w.source}: {w.check} [{w.column}] {w.unexpected_count or ''} {w.detail}" for w in warnings]
    with pl.Config(
        tbl_rows=100,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        thousands_separator=",",
        float_precision=2,
    ):
        lines += [str(energy), str(power)]
    lines.append(
        f"  warehouse: {warehouse.describe(where)}   query it: mayorista sql \"FROM ncc11_energy WHERE quarter = '{quarter}'\""
    )
    return "\n".join(lines)
