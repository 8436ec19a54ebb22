"""Small hand-made NCC-11 inputs shared by the NCC-11, warehouse and analyst tests (helpers only, no tests here)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import periods

QUARTER = "2026-03"  # March-May 2026: March and April in the old bands, May in the 2026 bands


def write_quarter(folder: Path, quarter: str = QUARTER) -> Path:
    """Two distributors with flat hourly values: D1 at node N1 (spot 1 MWh at 100 USD/MWh, contract
    2 MWh at 50 USD/MWh, total 3 MWh); D2 at node N2 (spot -1 MWh at 60, contract 5 MWh at 80, total 4)."""
    start, end = periods.quarter_bounds(quarter)
    hours = pl.datetime_range(start, end, "1h", closed="left", eager=True).dt.strftime("%Y-%m-%d %H:%M")
    n = len(hours)
    months = periods.quarter_months(quarter)
    folder.mkdir(parents=True, exist_ok=True)

    def rep(**cols):
        return pl.DataFrame({k: (v if isinstance(v, pl.Series) else [v] * n) for k, v in cols.items()})

    pl.concat(
        [rep(node="N1", hour=hours, price_usd_mwh=100.0), rep(node="N2", hour=hours, price_usd_mwh=60.0)]
    ).write_csv(folder / "nodal_prices.csv")
    pl.concat(
        [
            rep(distributor="D1", node="N1", hour=hours, energy_mwh=1.0),
            rep(distributor="D2", node="N2", hour=hours, energy_mwh=-1.0),
        ]
    ).write_csv(folder / "spot_demand.csv")
    pl.concat(
        [
            rep(distributor="D1", contract_id="C1", producer="G1", hour=hours, energy_mwh=2.0, price_usd_mwh=50.0),
            rep(distributor="D2", contract_id="C2", producer="G2", hour=hours, energy_mwh=5.0, price_usd_mwh=80.0),
        ]
    ).write_csv(folder / "contract_dispatch.csv")
    pl.concat(
        [rep(distributor="D1", hour=hours, energy_mwh=3.0), rep(distributor="D2", hour=hours, energy_mwh=4.0)]
    ).write_csv(folder / "total_demand.csv")
    pl.DataFrame(
        {
            "distributor": ["D1"] * 3 + ["D2"] * 3,
            "contract_id": ["C1"] * 3 + ["C2"] * 3,
            "producer": ["G1"] * 3 + ["G2"] * 3,
            "month": months * 2,
            "power_kw": [1000.0] * 3 + [2000.0] * 3,
            "price_usd_kw_month": [9.0] * 6,
        }
    ).write_csv(folder / "power_contracts.csv")
    pl.DataFrame(
        {
            "distributor": ["D1"] * 3 + ["D2"] * 3,
            "month": months * 2,
            "dfnc_kw": [100.0, 200.0, 300.0, 0.0, 0.0, 0.0],
            "demax_kw": [1500.0, 1600.0, 1700.0, 2000.0, 2000.0, 2000.0],
        }
    ).write_csv(folder / "firm_demand.csv")
    pl.DataFrame({"name": ["prefpot_usd_kw_month"], "value": [8.5]}).write_csv(folder / "parameters.csv")
    return folder
