"""The quarterly programming files of the NCC-11 contract, read and typed.

Hourly programming keys the time-varying files by `hour`; programming by load blocks keys them by
`block` instead and adds a `blocks` file (block, band, hours)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from pipelines.inputs import Schema, find_input, read_table

Mode = Literal["hour", "block"]

# name -> schema with `hour` as the time key (replaced by `block` in block mode)
SCHEMAS: dict[str, Schema] = {
    "nodal_prices": {"node": "str", "hour": "hour", "price_usd_mwh": "float"},
    "spot_demand": {"distributor": "str", "node": "str", "hour": "hour", "energy_mwh": "float"},
    "contract_dispatch": {"distributor": "str", "contract_id": "str", "producer": "str", "hour": "hour",
                          "energy_mwh": "float", "price_usd_mwh": "float"},
    "total_demand": {"distributor": "str", "hour": "hour", "energy_mwh": "float"},
    "power_contracts": {"distributor": "str", "contract_id": "str", "producer": "str", "month": "month",
                        "power_kw": "float", "price_usd_kw_month": "float"},
    "firm_demand": {"distributor": "str", "month": "month", "dfnc_kw": "float", "demax_kw": "float"},
    "parameters": {"name": "str", "value": "float"},
}
BLOCKS_SCHEMA: Schema = {"block": "str", "band": "str", "hours": "float"}
TIME_KEYED = ("nodal_prices", "spot_demand", "contract_dispatch", "total_demand")
PREFPOT = "prefpot_usd_kw_month"


@dataclass
class Ncc11Inputs:
    quarter: str
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


def load(input_dir: Path, quarter: str) -> Ncc11Inputs:
    """Read every contract file; the presence of a `blocks` file switches to block mode."""
    input_dir = Path(input_dir)
    mode: Mode = "block" if find_input(input_dir, "blocks") else "hour"
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, Path] = {}
    names = list(SCHEMAS) + (["blocks"] if mode == "block" else [])
    for name in names:
        schema = BLOCKS_SCHEMA if name == "blocks" else schema_for(name, mode)
        frames[name] = read_table(input_dir, name, schema)
        files[name] = find_input(input_dir, name)  # type: ignore[assignment]
    return Ncc11Inputs(quarter=quarter, mode=mode, frames=frames, files=files)
