"""NCC-11's published figures are reproducible bit for bit: the same inputs give the same values on
every run and with any number of DuckDB threads (the sums are exact, sql/ncc11_*.sql).

The quarter is the benchmark's full scale (30 distributors, 150 nodes, 300 contracts: 1.39 M hourly
rows, 662,400 of them contract dispatch), so DuckDB really aggregates in parallel (it splits work per
row group of 122,880 rows)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.errors import InputError, MayoristaError
from pipelines.ncc11 import formulas, job, sample
from pipelines.ncc11.inputs import Ncc11Inputs
from pipelines.periods import Quarter

Q = Quarter.parse("2026-05")
FULL_SCALE = sample.Scale(distributors=30, nodes=150, nodes_per_distributor=5, contracts_per_distributor=10, seed=7)


@pytest.fixture(scope="module")
def quarter() -> Ncc11Inputs:
    frames = sample.frames(Q.label, FULL_SCALE)
    assert sum(frames[n].height for n in formulas_inputs()) >= 1_390_000
    assert frames["contract_dispatch"].height >= 500_000
    return Ncc11Inputs(quarter=Q, mode="hour", frames=frames, files={})


def formulas_inputs() -> tuple[str, ...]:
    return ("nodal_prices", "spot_demand", "contract_dispatch", "total_demand")


def _compute(inputs: Ncc11Inputs, threads: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, pl.DataFrame]:
    monkeypatch.setenv("MAYORISTA_DUCKDB_THREADS", str(threads))
    return job.compute(inputs)


def test_every_published_table_is_identical_across_runs_and_thread_counts(quarter, monkeypatch):
    first = _compute(quarter, 2, monkeypatch)
    assert set(first) == {"ncc11_energy", "ncc11_energy_month", "ncc11_power_month", "ncc11_power", "ncc11_total_cost"}
    for threads in (2, 1):
        again = _compute(quarter, threads, monkeypatch)
        for table, frame in first.items():
            # exact: every float equal to the last bit, no tolerance
            assert_frame_equal(again[table], frame, check_exact=True)
    energy = first["ncc11_energy"]
    assert energy.height == 90 and energy["pmce_usd_mwh"].null_count() == 0


def test_the_quarter_is_big_enough_that_a_double_sum_would_differ(quarter):
    """Guards the test above: on these inputs DuckDB's plain DOUBLE sum does change with the number of
    threads (what the published figures did before the sums were exact)."""
    contracts = quarter.frames["contract_dispatch"]

    def double_sum(threads: int) -> list[tuple]:
        con = duckdb.connect(config={"threads": threads})
        con.register("c", contracts)
        rows = con.sql(
            "SELECT distributor, sum(energy_mwh * price_usd_mwh) FROM c GROUP BY distributor ORDER BY distributor"
        ).fetchall()
        con.close()
        return rows

    one, two = double_sum(1), double_sum(2)
    assert one != two  # last bits moved in at least one of the 30 sums
    assert all(a[1] == pytest.approx(b[1], rel=1e-12) for a, b in zip(one, two))


def test_sums_are_the_exact_sums_of_the_inputs():
    """Terms 0.1 + 0.2 (+ ...) add up as decimals: a DOUBLE sum of 0.1 ten times is 0.9999999999999999."""
    hours = pl.datetime_range(*Q.bounds, "1h", closed="left", eager=True, time_unit="us")[:10]
    slots = pl.DataFrame({"slot": hours, "band": ["valle"] * 10, "weight": [1.0] * 10})
    one = pl.DataFrame({"distributor": ["D1"] * 10, "hour": hours, "energy_mwh": [0.1] * 10})
    table = formulas.energy_table(
        Q,
        pl.DataFrame({"node": ["N1"] * 10, "hour": hours, "price_usd_mwh": [1.0] * 10}),
        one.with_columns(node=pl.lit("N1")),
        one.with_columns(contract_id=pl.lit("C1"), producer=pl.lit("G1"), price_usd_mwh=pl.lit(1.0)),
        one,
        slots,
    )
    valle = table.filter(pl.col("band") == "valle").row(0, named=True)
    assert valle["spot_energy_mwh"] == 1.0 and valle["ccs_usd"] == 1.0 and valle["total_demand_mwh"] == 1.0
    assert valle["pmce_usd_mwh"] == 2.0


def test_a_value_too_large_to_sum_exactly_is_bad_input():
    frame = pl.DataFrame({"distributor": ["D1"], "month": ["2026-05"], "dfnc_kw": [1e30], "demax_kw": [1.0]})
    contracts = pl.DataFrame(
        schema={
            "distributor": pl.String,
            "contract_id": pl.String,
            "month": pl.String,
            "power_kw": pl.Float64,
            "price_usd_kw_month": pl.Float64,
        }
    )
    power_month = formulas.power_month_table(Q, contracts, frame, 8.9)
    with pytest.raises(InputError, match="too large to add up exactly"):
        formulas.power_table(Q, power_month, 8.9)


def test_a_bad_thread_count_is_one_sentence(monkeypatch):
    monkeypatch.setenv("MAYORISTA_DUCKDB_THREADS", "two")
    with pytest.raises(MayoristaError, match="MAYORISTA_DUCKDB_THREADS"):
        formulas.power_table(Q, pl.DataFrame({"distributor": ["D1"], "ccp_usd": [1.0], "demax_kw": [1.0]}), 8.9)
