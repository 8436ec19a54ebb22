"""The quarterly programming files of the NCC-11 contract, read and typed.

Hourly programming keys the time-varying files by `hour`; programming by load blocks keys them by
`block` instead and adds a `blocks` file (block, band, hours)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from pipelines import periods
from pipelines.errors import InputError
from pipelines.inputs import Schema, check_dir, find_input, read_table

logger = logging.getLogger(__name__)

Mode = Literal["hour", "block"]

# name -> schema with `hour` as the time key (replaced by `block` in block mode)
SCHEMAS: dict[str, Schema] = {
    "nodal_prices": {"node": "str", "hour": "hour", "price_usd_mwh": "float"},
    "spot_demand": {"distributor": "str", "node": "str", "hour": "hour", "energy_mwh": "float"},
    "contract_dispatch": {
        "distributor": "str",
        "contract_id": "str",
        "producer": "str",
        "hour": "hour",
        "energy_mwh": "float",
        "price_usd_mwh": "float",
    },
    "total_demand": {"distributor": "str", "hour": "hour", "energy_mwh": "float"},
    "power_contracts": {
        "distributor": "str",
        "contract_id": "str",
        "producer": "str",
        "month": "month",
        "power_kw": "float",
        "price_usd_kw_month": "float",
    },
    "firm_demand": {"distributor": "str", "month": "month", "dfnc_kw": "float", "demax_kw": "float"},
    "parameters": {"name": "str", "value": "float"},
}
BLOCKS_SCHEMA: Schema = {"block": "str", "band": "str", "hours": "float"}
# optional files: the run goes on without them (11.1's other cost components, summed into ncc11_total_cost)
OPTIONAL: dict[str, Schema] = {
    "other_costs": {"distributor": "str", "month": "month", "component": "str", "usd": "float"},
}
TIME_KEYED = ("nodal_prices", "spot_demand", "contract_dispatch", "total_demand")
PREFPOT = "prefpot_usd_kw_month"


@dataclass
class Ncc11Inputs:
    quarter: periods.Quarter
    mode: Mode
    frames: dict[str, pl.DataFrame]  # includes "blocks" in block mode
    files: dict[str, Path]

    @property
    def time_col(self) -> str:
        return self.mode

    def prefpot(self) -> float:
        values = self.frames["parameters"].filter(pl.col("name") == PREFPOT)["value"]
        return float(values[0])


def schema_for(name: str, mode: Mode) -> Schema:
    schema = SCHEMAS[name]
    if mode == "block" and name in TIME_KEYED:
        return {("block" if c == "hour" else c): ("str" if c == "hour" else k) for c, k in schema.items()}
    return schema


def load(input_dir: Path, quarter: periods.Quarter) -> Ncc11Inputs:
    """Read every contract file; the presence of a `blocks` file switches to block mode."""
    input_dir = Path(input_dir)
    check_dir(input_dir)
    mode: Mode = "block" if find_input(input_dir, "blocks") else "hour"
    logger.info(
        "ncc11 %s: %s programming (%s)",
        quarter,
        "load-block" if mode == "block" else "hourly",
        "a blocks file is present" if mode == "block" else "no blocks file",
    )
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, Path] = {}
    names = list(SCHEMAS) + (["blocks"] if mode == "block" else [])
    for name in names:
        schema = BLOCKS_SCHEMA if name == "blocks" else schema_for(name, mode)
        frames[name] = read_table(input_dir, name, schema)
        files[name] = find_input(input_dir, name)  # type: ignore[assignment]
    for name, schema in OPTIONAL.items():
        frame = read_table(input_dir, name, schema, required=False)
        if frame is not None:
            frames[name] = frame
            files[name] = find_input(input_dir, name)  # type: ignore[assignment]
        else:
            # no other_costs: no ncc11_total_cost this quarter (the job empties an earlier run's)
            logger.info("ncc11 %s: no %s.csv or .parquet (optional): no ncc11_total_cost", quarter, name)
    inputs = Ncc11Inputs(quarter=quarter, mode=mode, frames=frames, files=files)
    check_quarter(inputs)
    return inputs


def _month_list(months: list[str], limit: int = 4) -> str:
    if len(months) <= limit:
        return ", ".join(months)
    return f"{months[0]} .. {months[-1]} ({len(months)} months)"


def check_quarter(inputs: Ncc11Inputs) -> None:
    """One short InputError when files hold none of the quarter at all (the files of another quarter,
    or the wrong --quarter), instead of every hour of every key reported as outside and missing."""
    wanted = inputs.quarter.month_labels
    wrong: dict[tuple[str, ...], list[str]] = {}  # months found -> files holding only those
    for name, frame in inputs.frames.items():
        if inputs.mode == "hour" and name in TIME_KEYED:
            months = frame["hour"].drop_nulls().dt.strftime("%Y-%m")
        elif "month" in frame.columns:
            months = frame["month"].drop_nulls()
        else:
            continue
        found = tuple(sorted(months.unique().to_list()))
        if found and not set(found) & set(wanted):
            wrong.setdefault(found, []).append(inputs.files[name].name)
    if not wrong:
        return
    quarter = f"not of the quarter {inputs.quarter} ({', '.join(wanted)})"
    if len(wrong) == 1:
        ((found, files),) = wrong.items()
        raise InputError(
            f"the input files hold hours of {_month_list(list(found))}, {quarter}: {', '.join(files)}; "
            "check --quarter or the input directory"
        )
    held = "; ".join(f"{', '.join(files)} hold {_month_list(list(found))}" for found, files in wrong.items())
    raise InputError(f"{held}; {quarter}: check --quarter or the input directory")
