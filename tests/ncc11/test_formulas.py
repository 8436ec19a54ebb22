"""NCC-11 formulas against values computed by hand (numerals 11.3 to 11.7)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from pipelines.ncc11 import formulas
from pipelines.periods import Quarter

H1, H2, H3 = datetime(2026, 5, 1, 19), datetime(2026, 5, 2, 3), datetime(2026, 5, 2, 19)
Q = Quarter.parse("2026-05")
SLOTS = pl.DataFrame({"slot": [H1, H2, H3], "band": ["punta", "valle", "punta"], "weight": [1.0, 1.0, 1.0]})


def _energy_inputs():
    prices = pl.DataFrame(
        {
            "node": ["N1"] * 3 + ["N2"] * 3,
            "hour": [H1, H2, H3] * 2,
            "price_usd_mwh": [100.0, 50.0, 80.0, 120.0, 40.0, 90.0],
        }
    )
    spot = pl.DataFrame(
        {
            "distributor": ["D1"] * 6 + ["D2"] * 3,
            "node": ["N1"] * 3 + ["N2"] * 3 + ["N1"] * 3,
            "hour": [H1, H2, H3] * 3,
            "energy_mwh": [10.0, -4.0, 5.0, 2.0, 6.0, 0.0, 4.0, 0.0, -4.0],
        }
    )
    contracts = pl.DataFrame(
        {
            "distributor": ["D1"] * 6,
            "contract_id": ["C1"] * 3 + ["C2"] * 3,
            "producer": ["G1"] * 3 + ["G2"] * 3,
            "hour": [H1, H2, H3] * 2,
            "energy_mwh": [20.0, 30.0, 25.0, 5.0, 0.0, 5.0],
            "price_usd_mwh": [80.0, 70.0, 80.0, 100.0, 100.0, 100.0],
        }
    )
    total = pl.DataFrame(
        {
            "distributor": ["D1"] * 3 + ["D2"] * 3,
            "hour": [H1, H2, H3] * 2,
            "energy_mwh": [37.0, 32.0, 35.0, 4.0, 0.0, 0.0],
        }
    )
    return prices, spot, contracts, total


def _row(table: pl.DataFrame, distributor: str, band: str) -> dict:
    rows = table.filter((pl.col("distributor") == distributor) & (pl.col("band") == band)).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_energy_hourly_by_hand():
    table = formulas.energy_table(Q, *_energy_inputs(), SLOTS)
    punta = _row(table, "D1", "punta")
    # CCS = 100*10 + 120*2 + 80*5 + 90*0 = 1640 over 17 MWh
    assert punta["ccs_usd"] == pytest.approx(1640.0)
    assert punta["spot_energy_mwh"] == pytest.approx(17.0)
    assert punta["peste_usd_mwh"] == pytest.approx(1640.0 / 17.0)
    # CCC = 20*80 + 25*80 + 5*100 + 5*100 = 4600 over 55 MWh; PMCE = (4600 + 1640) / (37 + 35)
    assert punta["ccc_usd"] == pytest.approx(4600.0)
    assert punta["contract_energy_mwh"] == pytest.approx(55.0)
    assert punta["total_demand_mwh"] == pytest.approx(72.0)
    assert punta["pmce_usd_mwh"] == pytest.approx(6240.0 / 72.0)
    valle = _row(table, "D1", "valle")
    # negative spot demand keeps its sign: 50*(-4) + 40*6 = 40 over 2 MWh
    assert valle["ccs_usd"] == pytest.approx(40.0)
    assert valle["peste_usd_mwh"] == pytest.approx(20.0)
    assert valle["ccc_usd"] == pytest.approx(2100.0)
    assert valle["pmce_usd_mwh"] == pytest.approx((2100.0 + 40.0) / 32.0)


def test_zero_denominators_give_null_and_every_band_is_reported():
    table = formulas.energy_table(Q, *_energy_inputs(), SLOTS)
    assert table.height == 2 * 3  # two distributors x three bands, even where a band has no hours
    d2_punta = _row(table, "D2", "punta")
    # spot energy 4 - 4 = 0 but CCS = 100*4 - 80*4 = 80 is carried; PESTE undefined -> NULL
    assert d2_punta["ccs_usd"] == pytest.approx(80.0)
    assert d2_punta["peste_usd_mwh"] is None
    assert d2_punta["pmce_usd_mwh"] == pytest.approx(80.0 / 4.0)
    d2_valle = _row(table, "D2", "valle")
    assert d2_valle["peste_usd_mwh"] is None and d2_valle["pmce_usd_mwh"] is None
    intermedia = _row(table, "D1", "intermedia")
    assert intermedia["ccs_usd"] == 0.0 and intermedia["peste_usd_mwh"] is None
    assert table["quarter"].unique().to_list() == ["2026-05"]


def test_block_mode_weights_each_block_by_its_hours():
    blocks = pl.DataFrame({"block": ["B1", "B2"], "band": ["punta", "valle"], "hours": [4.0, 8.0]})
    prices = pl.DataFrame({"node": ["N1", "N1"], "block": ["B1", "B2"], "price_usd_mwh": [100.0, 50.0]})
    spot = pl.DataFrame(
        {"distributor": ["D1", "D1"], "node": ["N1", "N1"], "block": ["B1", "B2"], "energy_mwh": [10.0, -2.0]}
    )
    contracts = pl.DataFrame(
        {
            "distributor": ["D1", "D1"],
            "contract_id": ["C1", "C1"],
            "producer": ["G", "G"],
            "block": ["B1", "B2"],
            "energy_mwh": [5.0, 3.0],
            "price_usd_mwh": [90.0, 60.0],
        }
    )
    total = pl.DataFrame({"distributor": ["D1", "D1"], "block": ["B1", "B2"], "energy_mwh": [15.0, 1.0]})
    table = formulas.energy_table(Q, prices, spot, contracts, total, formulas.block_slots(blocks), time_col="block")
    punta, valle = _row(table, "D1", "punta"), _row(table, "D1", "valle")
    assert punta["ccs_usd"] == pytest.approx(100 * 10 * 4)  # 4000 over 40 MWh
    assert punta["peste_usd_mwh"] == pytest.approx(100.0)
    assert punta["ccc_usd"] == pytest.approx(5 * 90 * 4)  # 1800
    assert punta["pmce_usd_mwh"] == pytest.approx((1800 + 4000) / 60)
    assert valle["ccs_usd"] == pytest.approx(50 * -2 * 8)  # -800 over -16 MWh
    assert valle["spot_energy_mwh"] == pytest.approx(-16.0)
    assert valle["peste_usd_mwh"] == pytest.approx(50.0)
    assert valle["pmce_usd_mwh"] == pytest.approx((1440 - 800) / 8)


def test_power_ccp_per_month_and_quarter_and_scp_by_hand():
    contracts = pl.DataFrame(
        {
            "distributor": ["D1", "D1", "D1"],
            "contract_id": ["C1", "C2", "C1"],
            "producer": ["G1", "G2", "G1"],
            "month": ["2026-05", "2026-05", "2026-06"],
            "power_kw": [1000.0, 500.0, 1000.0],
            "price_usd_kw_month": [8.0, 10.0, 8.0],
        }
    )
    firm = pl.DataFrame(
        {
            "distributor": ["D1"] * 3,
            "month": ["2026-05", "2026-06", "2026-07"],
            "dfnc_kw": [200.0, 0.0, 300.0],
            "demax_kw": [1800.0, 1000.0, 400.0],
        }
    )
    month = formulas.power_month_table(Q, contracts, firm, 9.0)
    # CCP(m) = sum PRECIOPOT*POTCON + DFNC*PREFPOT: 8000+5000+1800, 8000+0, 0+2700
    assert month.sort("month")["ccp_usd"].to_list() == pytest.approx([14800.0, 8000.0, 2700.0])
    quarter = formulas.power_table(Q, month, 9.0).to_dicts()[0]
    assert quarter["ccp_usd"] == pytest.approx(25500.0)
    assert quarter["demax_kw_sum"] == pytest.approx(3200.0)
    assert quarter["scp_usd"] == pytest.approx(25500.0 - 9.0 * 3200.0)  # -3300


@pytest.mark.parametrize(
    ("hour", "band"),
    [
        (datetime(2026, 4, 30, 10), "intermedia"),  # old regime: 06-17 intermedia
        (datetime(2026, 4, 30, 21), "punta"),  # old regime: 18-21 punta
        (datetime(2026, 4, 30, 22), "valle"),
        (datetime(2026, 5, 1, 10), "punta"),  # 2026 regime: 10-12 and 18-20 punta
        (datetime(2026, 5, 1, 13), "intermedia"),
        (datetime(2026, 5, 1, 21), "valle"),
        (datetime(2026, 5, 1, 5), "valle"),
    ],
)
def test_band_of_an_hour_depends_on_its_date(hour, band):
    slots = formulas.hourly_slots(datetime(2026, 4, 30), datetime(2026, 5, 2))
    assert slots.filter(pl.col("slot") == hour)["band"].to_list() == [band]
