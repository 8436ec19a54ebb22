"""The quarterly NCC-11 run in three steps, shared by the CLI and the Airflow DAG:

    ingest    read + type the programming files, validate them (GX), stage them as Parquet
    transform compute CCS/PESTE/CCC/PMCE and CCP/SCP from the staged inputs, stage the outputs
    publish   one warehouse transaction replacing the quarter's rows, then swap the lake partitions

Nothing is published until every step has succeeded, so a failed run leaves the quarter's previous
results as they were; a re-run replaces them."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, TypeVar

from upath import UPath

import polars as pl

from pipelines import config, lake, periods, quality, warehouse
from pipelines.errors import MayoristaError
from pipelines.manifest import Manifest
from pipelines.ncc11 import checks, formulas
from pipelines.ncc11.inputs import Ncc11Inputs, load

PIPELINE = "ncc11"
T = TypeVar("T")
OUTPUT_TABLES = ("ncc11_energy", "ncc11_power_month", "ncc11_power")


@dataclass
class RunResult:
    quarter: str
    run_id: str
    rows: dict[str, int] = field(default_factory=dict)
    warnings: list[quality.CheckResult] = field(default_factory=list)
    summary: str = ""


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _paths(warehouse_path: Path | None, lake_root: str | Path | None) -> tuple[Path, UPath]:
    return Path(warehouse_path or config.warehouse_path()), config.lake_root(lake_root)


def _record_failure(manifest: Manifest, error: Exception, warehouse_path: Path) -> None:
    manifest.status = f"failed: {str(error).splitlines()[0]}"
    warehouse.publish([("run_manifests", manifest.row(), {"run_id": manifest.run_id})], warehouse_path)


def _checked_inputs(quarter: str, input_dir: Path, manifest: Manifest, wh: Path,
                    ahead: Callable[[Ncc11Inputs], T] | None = None) -> tuple[Ncc11Inputs, T | None]:
    """Read and validate a quarter's inputs, recording the checks in `validation_results`.

    GX is imported in the background from the start. Meanwhile the files are read and the frames the
    suites check are computed, and `ahead(inputs)` runs in a worker thread (polars, DuckDB and
    hashing release the GIL; the GX import and GX itself mostly hold it). `ahead`'s result is
    returned only if validation passes, so a run on bad input never gets further than before."""
    periods.quarter_months(quarter)  # a malformed quarter fails here, before anything is read
    gx_ready = quality.warm(*checks.SUITES)
    try:
        with manifest.step("read"):
            inputs = load(Path(input_dir), quarter)
        with ThreadPoolExecutor(max_workers=3) as pool:
            future = pool.submit(ahead, inputs) if ahead else None
            hashed = [pool.submit(manifest.add_input, path, inputs.frames[name].height) for name, path in inputs.files.items()]
            with manifest.step("profile"):
                planned = checks.plan_checks(inputs)
            with manifest.step("await_gx_import"):
                gx_ready.join()
            with manifest.step("validate"):
                results = checks.run_planned(planned)
            warehouse.publish([("validation_results", quality.results_frame(
                results, run_id=manifest.run_id, pipeline=PIPELINE, period=quarter), {"run_id": manifest.run_id})], wh)
            quality.raise_on_errors(results)
            early = future.result() if future else None
            for done in hashed:
                done.result()
        manifest.inputs.sort(key=lambda entry: entry["file"])
    except MayoristaError as exc:
        _record_failure(manifest, exc, wh)
        raise
    manifest.counts["programming_by_blocks"] = int(inputs.mode == "block")
    manifest.counts["warnings"] = sum(1 for r in results if not r.success)
    return inputs, early


def _stage(stage: UPath, manifest: Manifest, inputs: Ncc11Inputs | None, outputs: dict[str, pl.DataFrame] | None,
           *, save: bool = True) -> None:
    quarter = manifest.period
    with manifest.step("stage"):
        for name, frame in (inputs.frames if inputs else {}).items():
            lake.write_parquet(frame, _staged_input(stage, name, quarter))
        for table, frame in (outputs or {}).items():
            lake.write_parquet(frame, _staged_output(stage, table, quarter))
            manifest.outputs[table] = frame.height
    if save:
        manifest.save(stage / "manifest.json")


def ingest(quarter: str, input_dir: Path, *, run_id: str, warehouse_path: Path | None = None,
           lake_root: str | Path | None = None) -> UPath:
    """Read, validate and stage a quarter's inputs; returns the staging directory."""
    wh, root = _paths(warehouse_path, lake_root)
    manifest = Manifest(PIPELINE, quarter, run_id)
    inputs, _ = _checked_inputs(quarter, input_dir, manifest, wh)
    stage = lake.staging_dir(root, PIPELINE, quarter, run_id)
    _stage(stage, manifest, inputs, None)
    return stage


def _staged_input(stage: UPath, name: str, quarter: str) -> UPath:
    return lake.partition_dir(stage / "lake", f"ncc11/input/{name}", quarter=quarter) / "data.parquet"


def _staged_output(stage: UPath, table: str, quarter: str) -> UPath:
    return lake.partition_dir(stage / "lake", table, quarter=quarter) / "data.parquet"


def compute(inputs: Ncc11Inputs) -> dict[str, pl.DataFrame]:
    """The three output tables from validated inputs."""
    f, q = inputs.frames, inputs.quarter
    if inputs.mode == "block":
        slots = formulas.block_slots(f["blocks"])
    else:
        slots = formulas.hourly_slots(*periods.quarter_bounds(q))
    energy = formulas.energy_table(q, f["nodal_prices"], f["spot_demand"], f["contract_dispatch"], f["total_demand"],
                                   slots, time_col=inputs.time_col)
    prefpot = inputs.prefpot()
    power_month = formulas.power_month_table(q, f["power_contracts"], f["firm_demand"], prefpot)
    return {"ncc11_energy": energy, "ncc11_power_month": power_month,
            "ncc11_power": formulas.power_table(q, power_month, prefpot)}


def transform(stage: str | UPath) -> UPath:
    """Compute the outputs from the staged inputs and stage them next to the inputs."""
    stage = lake.location(stage)
    manifest = Manifest.load(stage / "manifest.json")
    quarter = manifest.period
    with manifest.step("transform"):
        staged = lake.files(stage / "lake" / "ncc11" / "input")  # <name>/quarter=<q>/data.parquet
        frames = {f.parent.parent.name: lake.read_parquet(f) for f in staged}
        mode = "block" if "blocks" in frames else "hour"
        outputs = compute(Ncc11Inputs(quarter=quarter, mode=mode, frames=frames, files={}))
    _stage(stage, manifest, None, outputs)
    return stage


def publish(stage: str | UPath, *, warehouse_path: Path | None = None, lake_root: str | Path | None = None) -> RunResult:
    """Replace the quarter's rows in the warehouse (one transaction), then its lake partitions."""
    stage = lake.location(stage)
    wh, root = _paths(warehouse_path, lake_root)
    manifest = Manifest.load(stage / "manifest.json")
    quarter = manifest.period
    with manifest.step("publish"):
        manifest.status = "succeeded"
        writes = [(t, str(_staged_output(stage, t, quarter)), {"quarter": quarter}) for t in OUTPUT_TABLES]
        warehouse.publish(writes + [("run_manifests", manifest.row(), {"run_id": manifest.run_id})], wh)
        for partition in sorted({f.parent for f in lake.files(stage / "lake")}, key=str):
            lake.swap_in(partition, root / partition.relative_to(stage / "lake").as_posix())
    manifest.save(manifest.publish_path(root))
    lake.discard(stage)
    result = RunResult(quarter=quarter, run_id=manifest.run_id, rows=dict(manifest.outputs))
    result.warnings = _warnings(manifest.run_id, wh)
    result.summary = _summary(result, wh, root)
    return result


def run(quarter: str, input_dir: Path, *, warehouse: Path | None = None, lake_root: str | Path | None = None,
        run_id: str | None = None) -> RunResult:
    """The whole quarter, as `mayorista ncc11` runs it: the same steps as the DAG, with the outputs
    computed and staged while the inputs are validated instead of after."""
    periods.quarter_months(quarter)
    wh, root = _paths(warehouse, lake_root)
    manifest = Manifest(PIPELINE, quarter, run_id or new_run_id())
    stage = lake.staging_dir(root, PIPELINE, quarter, manifest.run_id)

    def compute_and_stage(inputs: Ncc11Inputs) -> None:
        _stage(stage, manifest, inputs, compute(inputs), save=False)  # the manifest is saved by this thread, below

    try:
        _checked_inputs(quarter, input_dir, manifest, wh, ahead=compute_and_stage)
        manifest.save(stage / "manifest.json")
        return publish(stage, warehouse_path=wh, lake_root=root)
    except Exception:
        lake.discard(stage)
        raise


def _warnings(run_id: str, wh: Path) -> list[quality.CheckResult]:
    rows = warehouse.query(
        "SELECT source, \"check\", \"column\", severity, success, unexpected_count, detail FROM validation_results "
        "WHERE run_id = ? AND NOT success", wh, [run_id])
    return [quality.CheckResult(**r) for r in rows.iter_rows(named=True)]


def _summary(result: RunResult, wh: Path, root: UPath) -> str:
    energy = warehouse.query(
        "SELECT distributor, band, round(ccs_usd)::BIGINT AS ccs_usd, round(peste_usd_mwh, 2) AS peste, "
        "round(ccc_usd)::BIGINT AS ccc_usd, round(pmce_usd_mwh, 2) AS pmce FROM ncc11_energy WHERE quarter = ? "
        "ORDER BY distributor, CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END", wh, [result.quarter])
    power = warehouse.query(
        "SELECT distributor, round(ccp_usd)::BIGINT AS ccp_usd, round(demax_kw_sum)::BIGINT AS demax_kw_sum, round(scp_usd)::BIGINT AS scp_usd FROM ncc11_power "
        "WHERE quarter = ? ORDER BY distributor", wh, [result.quarter])
    lines = [f"NCC-11 quarter {result.quarter} published (run {result.run_id})",
             f"  rows: {', '.join(f'{t}={n}' for t, n in result.rows.items())}",
             f"  warnings: {len(result.warnings)}"]
    lines += [f"    - {w.source}: {w.check} [{w.column}] {w.unexpected_count or ''} {w.detail}" for w in result.warnings]
    with pl.Config(tbl_rows=100, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, thousands_separator=",",
                   float_precision=2):
        lines += [str(energy), str(power)]
    lines.append(f"  warehouse: {wh}\n  lake: {root}")
    return "\n".join(lines)
