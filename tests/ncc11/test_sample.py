"""The bundled NCC-11 sample: the four tariff quarters of 2026, exactly what the generator writes
(so the committed files never drift from it), the same market in every quarter (distributors,
contracts, producers, nodes), and spot prices that follow the seasons (dry above rainy)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.ncc11 import sample

COMMITTED = Path(__file__).resolve().parents[2] / "data" / "sample" / "ncc11"


def test_the_committed_sample_is_what_the_generator_writes(tmp_path):
    written = sample.generate_year(tmp_path)
    assert [p.name for p in written] == ["2026-02", "2026-05", "2026-08", "2026-11"]
    assert sorted(p.name for p in COMMITTED.iterdir()) == ["2026-02", "2026-05", "2026-08", "2026-11"]
    for folder in written:
        names = sorted(f.name for f in folder.iterdir())
        assert names == sorted(f.name for f in (COMMITTED / folder.name).iterdir())
        for name in names:
            assert (folder / name).read_bytes() == (COMMITTED / folder.name / name).read_bytes(), (
                f"{folder.name}/{name}"
            )


def test_every_quarter_has_the_same_market_and_its_own_hours():
    quarters = {q: sample.frames(q) for q in sample.SAMPLE_QUARTERS}

    def structure(frames: dict[str, pl.DataFrame]) -> tuple:
        contracts = (
            frames["contract_dispatch"].select("distributor", "contract_id", "producer").unique().sort("contract_id")
        )
        nodes = frames["spot_demand"].select("distributor", "node").unique().sort("distributor", "node")
        return tuple(contracts.rows()), tuple(nodes.rows())

    first = structure(quarters["2026-02"])
    for q, frames in quarters.items():
        assert structure(frames) == first, q
        hours = frames["total_demand"]["hour"]
        assert hours.min().strftime("%Y-%m") == q  # the quarter's own three months
        assert hours.dt.strftime("%Y-%m").n_unique() == 3
    # November's quarter runs into the next year
    assert quarters["2026-11"]["total_demand"]["hour"].max().strftime("%Y-%m-%d %H") == "2027-01-31 23"
    # the hourly noise differs between quarters
    assert quarters["2026-05"]["total_demand"]["energy_mwh"][:24].to_list() != (
        quarters["2026-08"]["total_demand"]["energy_mwh"][:24].to_list()
    )


def test_spot_prices_follow_the_seasons():
    mean = {q: sample.frames(q)["nodal_prices"]["price_usd_mwh"].mean() for q in ("2026-02", "2026-08")}
    assert mean["2026-02"] > 1.2 * mean["2026-08"]  # dry season (more thermal) above the rainy one
    for q in sample.SAMPLE_QUARTERS:
        prices = sample.frames(q)["nodal_prices"]["price_usd_mwh"]
        assert 40 <= prices.min() and prices.max() <= 180
