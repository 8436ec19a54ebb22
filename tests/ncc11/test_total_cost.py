"""ncc11_total_cost (NCC-11 11.1): CCC + CCS + CCP + the other cost components per distributor and
month, computed by hand on tiny programming files; the optional other_costs file and its GX suite."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines import warehouse
from pipelines.errors import ValidationFailed
from pipelines.ncc11 import formulas, job
from pipelines.periods import Quarter
from tests.ncc11.fixtures import write_quarter

QUARTER = Quarter.parse("2026-05")  # May (744 h), June (720 h), July (744 h)


def test_total_cost_by_hand_per_month():
    may, june = datetime(2026, 5, 31, 19), datetime(2026, 6, 1, 3)
    slots = pl.DataFrame({"slot": [may, june], "band": ["punta", "valle"], "weight": [1.0, 1.0]})
    prices = pl.DataFrame({"node": ["N1", "N1"], "hour": [may, june], "price_usd_mwh": [100.0, 40.0]})
    spot = pl.DataFrame(
        {"distributor": ["D1", "D1"], "node": ["N1", "N1"], "hour": [may, june], "energy_mwh": [2.0, -3.0]}
    )
    dispatch = pl.DataFrame(
        {
            "distributor": ["D1", "D1"],
            "contract_id": ["C1", "C1"],
            "producer": ["G1", "G1"],
            "hour": [may, june],
            "energy_mwh": [5.0, 4.0],
            "price_usd_mwh": [70.0, 60.0],
        }
    )
    power = pl.DataFrame(
        {
            "distributor": ["D1", "D1", "D2"],
            "month": ["2026-05", "2026-06", "2026-05"],
            "ccp_usd": [1000.0, 1100.0, 500.0],
        }
    )
    other = pl.DataFrame(
        {
            "distributor": ["D1", "D1", "D2"],
            "month": ["2026-05", "2026-05", "2026-05"],
            "component": ["tolls", "amm_fee", "losses"],
            "usd": [30.0, 2.5, 7.0],
        }
    )
    table = formulas.total_cost_table(QUARTER, prices, spot, dispatch, slots, power, other)
    rows = {(r["distributor"], r["month"]): r for r in table.to_dicts()}
    assert set(rows) == {("D1", "2026-05"), ("D1", "2026-06"), ("D2", "2026-05")}
    # D1 May: CCS = 100*2 = 200; CCC = 5*70 = 350; CCP 1000; other = 30 + 2.5
    d1_may = rows[("D1", "2026-05")]
    assert (d1_may["ccs_usd"], d1_may["ccc_usd"], d1_may["ccp_usd"], d1_may["other_usd"]) == pytest.approx(
        (200, 350, 1000, 32.5)
    )
    assert d1_may["total_usd"] == pytest.approx(1582.5)
    # D1 June: CCS = 40*(-3) = -120 (the sign is kept); CCC = 4*60 = 240; CCP 1100; no other costs
    assert rows[("D1", "2026-06")]["total_usd"] == pytest.approx(-120 + 240 + 1100)
    assert rows[("D1", "2026-06")]["other_usd"] == 0
    # D2 has power and other costs but no energy: CCC = CCS = 0
    assert rows[("D2", "2026-05")]["total_usd"] == pytest.approx(507.0)
    assert all(r["quarter"] == QUARTER.label for r in rows.values())


def test_block_programming_leaves_monthly_energy_unknown():
    blocks = pl.DataFrame({"slot": ["B1"], "band": ["punta"], "weight": [10.0]})
    empty = pl.DataFrame({"distributor": ["D1"], "node": ["N1"], "block": ["B1"], "energy_mwh": [1.0]})
    prices = pl.DataFrame({"node": ["N1"], "block": ["B1"], "price_usd_mwh": [50.0]})
    dispatch = pl.DataFrame(
        {
            "distributor": ["D1"],
            "contract_id": ["C1"],
            "producer": ["G1"],
            "block": ["B1"],
            "energy_mwh": [1.0],
            "price_usd_mwh": [50.0],
        }
    )
    power = pl.DataFrame({"distributor": ["D1"], "month": ["2026-05"], "ccp_usd": [10.0]})
    other = pl.DataFrame({"distributor": ["D1"], "month": ["2026-05"], "component": ["tolls"], "usd": [1.0]})
    row = formulas.total_cost_table(QUARTER, prices, empty, dispatch, blocks, power, other, time_col="block").row(
        0, named=True
    )
    assert row["ccc_usd"] is None and row["ccs_usd"] is None and row["total_usd"] is None
    assert row["ccp_usd"] == 10.0 and row["other_usd"] == 1.0


def _other_costs(folder: Path, rows: list[tuple[str, str, str, float]]) -> None:
    pl.DataFrame(rows, schema=["distributor", "month", "component", "usd"], orient="row").write_csv(
        folder / "other_costs.csv"
    )


def test_published_with_the_run_and_gone_on_a_rerun_without_it(workspace, tmp_path):
    folder = write_quarter(tmp_path / "in", QUARTER)
    _other_costs(
        folder,
        [("D1", "2026-05", "tolls", 1000.0), ("D1", "2026-05", "amm_fee", 250.5), ("D2", "2026-07", "losses", 300.0)],
    )
    result = job.run(QUARTER, folder)
    db = workspace / "warehouse.sqlite"
    table = warehouse.query("SELECT * FROM ncc11_total_cost ORDER BY distributor, month", db)
    assert table.columns == [
        "quarter",
        "month",
        "distributor",
        "ccc_usd",
        "ccs_usd",
        "ccp_usd",
        "other_usd",
        "total_usd",
    ]
    rows = {(r["distributor"], r["month"]): r for r in table.to_dicts()}
    assert len(rows) == 6
    # D1 (write_quarter): spot 1 MWh at 100, contract 2 MWh at 50 every hour; CCP = 1000 kW * 9 + DFNC * 8.5
    assert rows[("D1", "2026-05")]["total_usd"] == pytest.approx(744 * 100 + 744 * 100 + (9000 + 100 * 8.5) + 1250.5)
    assert rows[("D1", "2026-06")]["total_usd"] == pytest.approx(720 * 100 + 720 * 100 + (9000 + 200 * 8.5))
    # D2: spot -1 MWh at 60 (negative CCS), contract 5 MWh at 80, CCP = 2000 kW * 9
    assert rows[("D2", "2026-07")]["ccs_usd"] == pytest.approx(-744 * 60)
    assert rows[("D2", "2026-07")]["total_usd"] == pytest.approx(-744 * 60 + 744 * 400 + 18000 + 300)
    # the monthly CCC and CCS add up to the quarter's (ncc11_energy)
    sums = warehouse.query(
        "SELECT (SELECT sum(ccc_usd + ccs_usd) FROM ncc11_total_cost) AS monthly, "
        "(SELECT sum(ccc_usd + ccs_usd) FROM ncc11_energy) AS quarterly",
        db,
    ).row(0)
    assert sums[0] == pytest.approx(sums[1])
    assert result.rows["ncc11_total_cost"] == 6
    inputs = warehouse.query("SELECT manifest FROM run_manifests", db)["manifest"][0]
    assert "other_costs.csv" in inputs

    (folder / "other_costs.csv").unlink()
    job.run(QUARTER, folder)
    assert warehouse.query("SELECT count(*) AS n FROM ncc11_total_cost", db)["n"][0] == 0


def test_unknown_component_or_duplicate_stops_the_run(workspace, tmp_path):
    folder = write_quarter(tmp_path / "in", QUARTER)
    _other_costs(
        folder,
        [
            ("D1", "2026-05", "tolls", 1.0),
            ("D1", "2026-05", "tolls", 2.0),
            ("D1", "2026-06", "fuel", 3.0),
            ("D9", "2026-06", "losses", 4.0),
        ],
    )
    with pytest.raises(ValidationFailed) as failed:
        job.run(QUARTER, folder)
    text = str(failed.value)
    assert "other_costs.csv: expect_column_values_to_be_in_set [component]" in text and "fuel" in text
    assert "expect_compound_columns_to_be_unique [distributor,month,component]" in text
    assert "[distributor]" in text and "D9" in text
    assert "ncc11_total_cost" not in warehouse.table_names(workspace / "warehouse.sqlite")
