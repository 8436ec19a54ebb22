"""NCC-11 formulas (numerals 11.3 to 11.7) over typed frames; the SQL lives in `sql/ncc11_*.sql`.

The functions take plain polars frames so they can be tested on hand-made rows; `slots` says which
band each time slot (hour or load block) belongs to and how many hours it stands for."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime

import duckdb
import polars as pl

from pipelines import bands, config
from pipelines.errors import InputError, MayoristaError
from pipelines.periods import Quarter

logger = logging.getLogger(__name__)


def _sql(name: str) -> str:
    return (config.sql_dir() / f"{name}.sql").read_text(encoding="utf-8")


def _threads() -> int | None:
    """DuckDB's threads for the formulas: MAYORISTA_DUCKDB_THREADS, else DuckDB's default (the cores).
    The published figures do not depend on it (the sums are exact); the tests set it to prove so."""
    value = os.environ.get("MAYORISTA_DUCKDB_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise MayoristaError(f"MAYORISTA_DUCKDB_THREADS must be a whole number >= 1, got {value!r}")
    return int(value)


def _run(sql_name: str, views: dict[str, pl.DataFrame], params: dict[str, object]) -> pl.DataFrame:
    started = time.perf_counter()
    threads = _threads()
    con = duckdb.connect(config={"threads": threads} if threads else {})
    try:
        for name, frame in views.items():
            con.register(name, frame)
        table = con.sql(_sql(sql_name), params=params).pl()
    except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
        # the exact sums (sql/ncc11_energy.sql) hold values below 1e26 in magnitude; inputs are finite
        # (pipelines.inputs), so only an absurdly large value ends up here
        raise InputError(
            f"{sql_name}: a value or sum of the inputs is too large to add up exactly (1e26 or more in "
            f"magnitude; prices are in USD/MWh, energy in MWh): {str(exc).splitlines()[0][:160]}"
        ) from exc
    finally:
        con.close()
    logger.info("%s.sql: %d rows in %.2f s", sql_name, table.height, time.perf_counter() - started)
    return table


def hourly_slots(start: datetime, end: datetime, calendar: pl.DataFrame | None = None) -> pl.DataFrame:
    """Hourly programming: each hour is a slot of weight 1 in the band in force on its date."""
    return bands.hour_bands(start, end, calendar).select(slot="hour", band="band", weight=pl.lit(1.0))


def block_slots(blocks: pl.DataFrame) -> pl.DataFrame:
    """Block programming: each block carries its band and the number of hours it stands for."""
    return blocks.select(slot="block", band="band", weight=pl.col("hours").cast(pl.Float64))


def _as_slot(frame: pl.DataFrame, time_col: str) -> pl.DataFrame:
    return frame.rename({time_col: "slot"})


def energy_table(
    quarter: Quarter,
    nodal_prices: pl.DataFrame,
    spot_demand: pl.DataFrame,
    contract_dispatch: pl.DataFrame,
    total_demand: pl.DataFrame,
    slots: pl.DataFrame,
    time_col: str = "hour",
) -> pl.DataFrame:
    """ncc11_energy rows: CCS and PESTE (11.3), CCC (11.4), PMCE (11.5) per distributor and band."""
    views = {
        "nodal_prices": _as_slot(nodal_prices, time_col),
        "spot_demand": _as_slot(spot_demand, time_col),
        "contract_dispatch": _as_slot(contract_dispatch, time_col),
        "total_demand": _as_slot(total_demand, time_col),
        "slots": slots,
    }
    return _run("ncc11_energy", views, {"quarter": quarter.label})


def _empty_hourly() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Empty hourly views (nodal prices, spot demand, contract dispatch, slots) of the right types: what
    the per-month formulas get for programming by load blocks, whose blocks carry no month."""
    hour = pl.Datetime("us")
    return (
        pl.DataFrame(schema={"node": pl.String, "hour": hour, "price_usd_mwh": pl.Float64}),
        pl.DataFrame(schema={"distributor": pl.String, "node": pl.String, "hour": hour, "energy_mwh": pl.Float64}),
        pl.DataFrame(
            schema={"distributor": pl.String, "hour": hour, "energy_mwh": pl.Float64, "price_usd_mwh": pl.Float64}
        ),
        pl.DataFrame(schema={"slot": hour, "band": pl.String, "weight": pl.Float64}),
    )


def energy_month_table(
    quarter: Quarter,
    nodal_prices: pl.DataFrame,
    spot_demand: pl.DataFrame,
    contract_dispatch: pl.DataFrame,
    total_demand: pl.DataFrame,
    slots: pl.DataFrame,
    time_col: str = "hour",
) -> pl.DataFrame:
    """ncc11_energy_month rows: the projection of each month of the quarter per distributor and band
    (the sums of 11.3, 11.4 and DTOTE over that month's hours). Programming by load blocks has no months
    inside the quarter: its rows are there, with NULL values."""
    distributors = pl.concat(
        [f.select(pl.col("distributor").cast(pl.String)) for f in (total_demand, spot_demand, contract_dispatch)]
    ).unique()
    by_hour = time_col == "hour"
    if not by_hour:
        nodal_prices, spot_demand, contract_dispatch, slots = _empty_hourly()
        total_demand = pl.DataFrame(
            schema={"distributor": pl.String, "hour": pl.Datetime("us"), "energy_mwh": pl.Float64}
        )
        time_col = "hour"
    views = {
        "nodal_prices": _as_slot(nodal_prices, time_col),
        "spot_demand": _as_slot(spot_demand, time_col),
        "contract_dispatch": _as_slot(contract_dispatch, time_col),
        "total_demand": _as_slot(total_demand, time_col),
        "slots": slots,
        "distributors": distributors,
    }
    table = _run(
        "ncc11_energy_month", views, {"quarter": quarter.label, "months": quarter.month_labels, "by_hour": by_hour}
    )
    return table.with_columns(
        pl.col(c).cast(pl.Float64)
        for c in ("total_demand_mwh", "spot_energy_mwh", "contract_energy_mwh", "ccs_usd", "ccc_usd")
    )


def power_month_table(
    quarter: Quarter, power_contracts: pl.DataFrame, firm_demand: pl.DataFrame, prefpot: float
) -> pl.DataFrame:
    """ncc11_power_month rows: CCP per distributor and month (11.6)."""
    views = {"power_contracts": power_contracts, "firm_demand": firm_demand}
    return _run("ncc11_power_month", views, {"quarter": quarter.label, "prefpot": prefpot})


def power_table(quarter: Quarter, power_month: pl.DataFrame, prefpot: float) -> pl.DataFrame:
    """ncc11_power rows: CCP per quarter (11.6) and SCP (11.7) per distributor."""
    return _run("ncc11_power", {"power_month": power_month}, {"quarter": quarter.label, "prefpot": prefpot})


def total_cost_table(
    quarter: Quarter,
    nodal_prices: pl.DataFrame,
    spot_demand: pl.DataFrame,
    contract_dispatch: pl.DataFrame,
    slots: pl.DataFrame,
    power_month: pl.DataFrame,
    other_costs: pl.DataFrame,
    time_col: str = "hour",
) -> pl.DataFrame:
    """ncc11_total_cost rows (11.1): CCC + CCS + CCP + the other components per distributor and month.

    CCC and CCS of a month are those of its hours; programming by load blocks has no months inside
    the quarter, so there they (and the total) are NULL."""
    by_hour = time_col == "hour"
    if not by_hour:  # no hours to place in months: empty hourly views of the right types
        nodal_prices, spot_demand, contract_dispatch, slots = _empty_hourly()
        time_col = "hour"
    views = {
        "nodal_prices": _as_slot(nodal_prices, time_col),
        "spot_demand": _as_slot(spot_demand, time_col),
        "contract_dispatch": _as_slot(contract_dispatch, time_col),
        "slots": slots,
        "power_month": power_month.select("distributor", "month", "ccp_usd"),
        "other_costs": other_costs.select("distributor", "month", "component", "usd"),
    }
    table = _run("ncc11_total_cost", views, {"quarter": quarter.label, "by_hour": by_hour})
    return table.with_columns(
        pl.col(c).cast(pl.Float64) for c in ("ccc_usd", "ccs_usd", "ccp_usd", "other_usd", "total_usd")
    )
