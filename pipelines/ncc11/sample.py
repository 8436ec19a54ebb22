"""Deterministic generator of long-term programming outputs, with realistic magnitudes: spot prices
40-180 USD/MWh with an evening peak, higher in the dry season (November-April, more thermal
generation) than in the rainy one, a daily load shape, contracts at 70-110 USD/MWh, power at about
9 USD/kW-month, and one over-contracted distributor whose spot demand turns negative at night.
Used for `data/sample/ncc11/` (the four tariff quarters of 2026, so that the demo's annual Informe
is a whole year) and, at full scale, by `bench/ncc11_bench.py`.

Two random streams: the market's structure (node price levels, each distributor's size, contracts,
producers and nodes) depends on the seed only, so it is the same in every quarter of the year; the
hourly noise depends on the seed and the quarter. The bands (config/bands.csv, new from 2026-05-01)
are not an input: the pipeline assigns them to each hour."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pipelines import periods

SAMPLE_QUARTER = "2026-05"
# the tariff quarters of 2026 (Feb-Apr, May-Jul, Aug-Oct, Nov-Jan): what `mayorista sample` writes
SAMPLE_QUARTERS = ("2026-02", "2026-05", "2026-08", "2026-11")
# spot prices by calendar month: dry season (Nov-Apr) above, rainy season (May-Oct) below the year's mean
_SEASON = {1: 1.12, 2: 1.15, 3: 1.18, 4: 1.15, 5: 1.0, 6: 0.9, 7: 0.86, 8: 0.85, 9: 0.84, 10: 0.9, 11: 1.0, 12: 1.08}


@dataclass(frozen=True)
class Scale:
    distributors: int = 4
    nodes: int = 10
    nodes_per_distributor: int = 3
    contracts_per_distributor: int = 3
    seed: int = 11


def _daily_shape(hod: np.ndarray) -> np.ndarray:
    """Relative load by hour of day: low at night, a plateau by day, a peak around 19:00."""
    return 0.55 + 0.25 * np.exp(-(((hod - 13) / 5.0) ** 2)) + 0.45 * np.exp(-(((hod - 19.5) / 1.8) ** 2))


def frames(quarter: str = SAMPLE_QUARTER, scale: Scale = Scale()) -> dict[str, pl.DataFrame]:
    fixed = np.random.default_rng(scale.seed)  # the market's structure: the same in every quarter
    first = periods.parse_month(quarter, "quarter")
    rng = np.random.default_rng([scale.seed, first.year, first.month])  # this quarter's hourly noise
    start, end = periods.quarter_bounds(quarter)
    hours = pl.datetime_range(start, end, "1h", closed="left", eager=True, time_unit="us")
    n_hours = len(hours)
    hod = hours.dt.hour().to_numpy().astype(float)
    shape = _daily_shape(hod)
    season = np.vectorize(_SEASON.get)(hours.dt.month().to_numpy())
    nodes = [f"N{i:03d}" for i in range(1, scale.nodes + 1)]
    dists = [f"DIST{i:02d}" for i in range(1, scale.distributors + 1)]

    # PN: evening peak on a node-specific base, scaled by the season, within 40-180 USD/MWh
    node_base = fixed.uniform(50, 70, scale.nodes)
    peak = np.exp(-(((hod - 19.5) / 2.0) ** 2))
    price = (node_base[:, None] + 95 * peak[None, :]) * season[None, :] + rng.normal(0, 6, (scale.nodes, n_hours))
    nodal_prices = pl.DataFrame(
        {
            "node": np.repeat(nodes, n_hours),
            "hour": pl.Series(np.tile(hours.to_numpy(), scale.nodes)),
            "price_usd_mwh": np.clip(price, 40, 180).ravel().round(2),
        }
    )

    spot_rows, contract_rows, total_rows, power_rows, firm_rows = [], [], [], [], []
    months = periods.quarter_months(quarter)
    month_of_hour = hours.dt.strftime("%Y-%m").to_numpy()
    for d_index, dist in enumerate(dists):
        size = fixed.uniform(80, 400)  # MWh in an average hour
        total = size * shape * rng.normal(1.0, 0.03, n_hours)
        # the second distributor is over-contracted: its flat contracts exceed its night load
        coverage = 1.15 if d_index == 1 else fixed.uniform(0.6, 0.85)
        contract_total = np.full(n_hours, coverage * size * shape.min() * (1.0 if d_index == 1 else 1.3))
        shares = fixed.dirichlet(np.ones(scale.contracts_per_distributor))
        contract_ids = [f"C{d_index + 1:02d}{g + 1:02d}" for g in range(scale.contracts_per_distributor)]
        producers = [f"GEN{fixed.integers(1, 60):02d}" for _ in contract_ids]
        contract_prices = fixed.uniform(70, 110, scale.contracts_per_distributor)
        for g, cid in enumerate(contract_ids):
            contract_rows.append(
                pl.DataFrame(
                    {
                        "distributor": dist,
                        "contract_id": cid,
                        "producer": producers[g],
                        "hour": hours,
                        "energy_mwh": (contract_total * shares[g]).round(3),
                        "price_usd_mwh": (contract_prices[g] + rng.normal(0, 1.5, n_hours)).round(2),
                    }
                )
            )
            for month in months:
                power_rows.append(
                    {
                        "distributor": dist,
                        "contract_id": cid,
                        "producer": producers[g],
                        "month": month,
                        "power_kw": round(float(contract_total.mean() * shares[g] * 1000 * 1.1), 1),
                        "price_usd_kw_month": round(float(rng.uniform(8.5, 9.6)), 2),
                    }
                )
        contract_energy = sum(r["energy_mwh"].to_numpy() for r in contract_rows[-scale.contracts_per_distributor :])
        spot = total - contract_energy
        dist_nodes = fixed.choice(nodes, scale.nodes_per_distributor, replace=False)
        node_share = fixed.dirichlet(np.ones(scale.nodes_per_distributor) * 4)
        for node, share in zip(dist_nodes, node_share):
            spot_rows.append(
                pl.DataFrame({"distributor": dist, "node": node, "hour": hours, "energy_mwh": (spot * share).round(3)})
            )
        total_rows.append(
            pl.DataFrame(
                {
                    "distributor": dist,
                    "hour": hours,
                    "energy_mwh": (contract_energy + (spot * node_share[:, None]).round(3).sum(0)).round(3),
                }
            )
        )
        contracted_kw = sum(r["power_kw"] for r in power_rows if r["distributor"] == dist) / len(months)
        for month in months:
            demax = float(total[month_of_hour == month].max() * 1000)
            firm_rows.append(
                {
                    "distributor": dist,
                    "month": month,
                    "dfnc_kw": round(max(0.0, 0.97 * demax - contracted_kw), 1),
                    "demax_kw": round(demax, 1),
                }
            )

    total_demand = pl.concat(total_rows)
    return {
        "nodal_prices": nodal_prices,
        "spot_demand": pl.concat(spot_rows),
        "contract_dispatch": pl.concat(contract_rows),
        "total_demand": total_demand,
        "power_contracts": pl.DataFrame(power_rows),
        "firm_demand": pl.DataFrame(firm_rows),
        "parameters": pl.DataFrame({"name": ["prefpot_usd_kw_month"], "value": [8.9]}),
        "other_costs": other_costs(total_demand, scale.seed),
    }


# USD per MWh of a distributor's demand for the other 11.1 components (typical orders of magnitude)
_OTHER_RATES = {
    "ancillary_services": 0.9,
    "forced_generation": 1.2,
    "losses": 2.5,
    "tolls": 6.0,
    "curtr": 0.7,
    "amm_fee": 0.35,
    "mer_regulation": 0.15,
    "system_operation": 0.25,
}


def other_costs(total_demand: pl.DataFrame, seed: int) -> pl.DataFrame:
    """The optional other_costs file: each component as a rate times the month's demand, +-10%.
    Its own random stream, so the other files do not change with it."""
    rng = np.random.default_rng(seed + 1)
    monthly = (
        total_demand.group_by("distributor", month=pl.col("hour").dt.strftime("%Y-%m"))
        .agg(mwh=pl.col("energy_mwh").sum())
        .sort("distributor", "month")
    )
    rows = [
        {
            "distributor": r["distributor"],
            "month": r["month"],
            "component": component,
            "usd": round(r["mwh"] * rate * float(rng.uniform(0.9, 1.1)), 2),
        }
        for r in monthly.iter_rows(named=True)
        for component, rate in _OTHER_RATES.items()
    ]
    return pl.DataFrame(
        rows, schema={"distributor": pl.String, "month": pl.String, "component": pl.String, "usd": pl.Float64}
    )


def write(out_dir: Path, data: dict[str, pl.DataFrame]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in data.items():
        frame.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M")).write_csv(out_dir / f"{name}.csv")
    return out_dir


def generate(out_root: Path, quarter: str = SAMPLE_QUARTER, scale: Scale = Scale()) -> Path:
    """Write the quarter's input files to `<out_root>/<quarter>/`."""
    return write(Path(out_root) / quarter, frames(quarter, scale))


def generate_year(out_root: Path, quarters: tuple[str, ...] = SAMPLE_QUARTERS) -> list[Path]:
    """The bundled sample: each tariff quarter of 2026 under `<out_root>/<quarter>/`."""
    return [generate(out_root, quarter) for quarter in quarters]
