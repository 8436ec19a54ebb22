"""ncc11_energy_month: the quarter's projection per month, distributor and band, by hand on the flat
fixture quarter 2026-03 (March and April in the old bands, May in the bands of 2026-05-01), published
in the same run (snapshot) as the quarter's other tables; its months add up to ncc11_energy."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines import warehouse
from pipelines.ncc11 import job
from tests.ncc11.fixtures import QUARTER, write_quarter

# hours per band: old bands punta 18-21 (4 h a day), intermedia 6-17 (12 h), valle 22-5 (8 h);
# from 2026-05-01 punta 10-12 + 18-20 (6 h), intermedia 6-9 + 13-17 (9 h), valle 21-5 (9 h)
HOURS = {
    "2026-03": {"punta": 4 * 31, "intermedia": 12 * 31, "valle": 8 * 31},  # 124, 372, 248
    "2026-04": {"punta": 4 * 30, "intermedia": 12 * 30, "valle": 8 * 30},  # 120, 360, 240
    "2026-05": {"punta": 6 * 31, "intermedia": 9 * 31, "valle": 9 * 31},  # 186, 279, 279
}


@pytest.fixture
def published(workspace: Path, tmp_path: Path) -> pl.DataFrame:
    result = job.run(QUARTER, write_quarter(tmp_path / "in"))
    assert result.rows["ncc11_energy_month"] == 2 * 3 * 3  # distributors x months x bands
    return warehouse.query("SELECT * FROM ncc11_energy_month ORDER BY distributor, month, band")


def test_month_projection_by_hand_across_the_band_change(published):
    rows = {(r["distributor"], r["month"], r["band"]): r for r in published.to_dicts()}
    assert set(published.columns) >= {
        "quarter",
        "month",
        "distributor",
        "band",
        "total_demand_mwh",
        "spot_energy_mwh",
        "contract_energy_mwh",
        "ccs_usd",
        "ccc_usd",
    }
    assert set(published["quarter"]) == {QUARTER}
    for month, bands in HOURS.items():
        for band, h in bands.items():
            d1, d2 = rows[("D1", month, band)], rows[("D2", month, band)]
            # D1: total 3 MWh/h; spot 1 MWh/h at 100 USD/MWh; contract 2 MWh/h at 50 USD/MWh
            assert (d1["total_demand_mwh"], d1["spot_energy_mwh"], d1["ccs_usd"]) == pytest.approx((3 * h, h, 100 * h))
            assert (d1["contract_energy_mwh"], d1["ccc_usd"]) == pytest.approx((2 * h, 2 * 50 * h))
            # D2: total 4 MWh/h; spot -1 MWh/h at 60; contract 5 MWh/h at 80
            assert (d2["total_demand_mwh"], d2["spot_energy_mwh"], d2["ccs_usd"]) == pytest.approx((4 * h, -h, -60 * h))
            assert (d2["contract_energy_mwh"], d2["ccc_usd"]) == pytest.approx((5 * h, 5 * 80 * h))
    # e.g. May's punta of D1: 6 h x 31 days = 186 h x 3 MWh = 558 MWh (March's: 124 h -> 372 MWh)
    assert rows[("D1", "2026-05", "punta")]["total_demand_mwh"] == 558.0
    assert rows[("D1", "2026-03", "punta")]["total_demand_mwh"] == 372.0


def test_the_months_add_up_to_the_quarter_and_publish_together(published, workspace):
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    try:
        diff = con.sql(
            "SELECT max(abs(m.total - e.total_demand_mwh)) + max(abs(m.ccs - e.ccs_usd)) + max(abs(m.ccc - e.ccc_usd)) "
            "FROM (SELECT distributor, band, sum(total_demand_mwh) AS total, sum(ccs_usd) AS ccs, "
            "sum(ccc_usd) AS ccc FROM ncc11_energy_month GROUP BY ALL) m JOIN ncc11_energy e USING (distributor, band)"
        ).fetchone()[0]
        assert diff == pytest.approx(0.0, abs=1e-6)
        # one run, one snapshot: the months appear in the snapshot of the quarter's run, not before it
        snapshot = int(con.sql("SELECT snapshot_id FROM run_manifests WHERE pipeline = 'ncc11'").fetchone()[0])
        counts = [
            con.sql(f"SELECT count(*) FROM {t} AT (VERSION => {v})").fetchone()[0]
            for v in (snapshot - 1, snapshot)
            for t in ("ncc11_energy_month", "ncc11_energy")
        ]
    finally:
        con.close()
    assert counts == [0, 0, 18, 6]


def test_rerun_replaces_the_quarters_months(published, workspace, tmp_path):
    job.run(QUARTER, write_quarter(tmp_path / "again"))
    assert warehouse.query("SELECT count(*) AS n FROM ncc11_energy_month")["n"][0] == 18


def test_block_programming_has_no_months_its_values_are_null():
    """Load blocks carry no month: the rows are there (every distributor, month and band), NULL, never guessed."""
    from pipelines.ncc11 import formulas
    from pipelines.periods import Quarter

    blocks = pl.DataFrame({"block": ["B0", "B1"], "band": ["punta", "valle"], "hours": [430.0, 767.0]})
    total = pl.DataFrame({"distributor": ["D1", "D2"], "block": ["B0", "B1"], "energy_mwh": [3.0, 4.0]})
    spot = pl.DataFrame({"distributor": ["D1"], "node": ["N1"], "block": ["B0"], "energy_mwh": [1.0]})
    prices = pl.DataFrame({"node": ["N1"], "block": ["B0"], "price_usd_mwh": [100.0]})
    dispatch = pl.DataFrame(
        {"distributor": ["D1"], "contract_id": ["C1"], "block": ["B0"], "energy_mwh": [2.0], "price_usd_mwh": [50.0]}
    )
    table = formulas.energy_month_table(
        Quarter.parse(QUARTER), prices, spot, dispatch, total, formulas.block_slots(blocks), time_col="block"
    )
    assert table.height == 2 * 3 * 3 and sorted(set(table["month"])) == ["2026-03", "2026-04", "2026-05"]
    assert table["total_demand_mwh"].null_count() == table.height and table["ccs_usd"].null_count() == table.height
