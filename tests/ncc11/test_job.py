"""The quarterly run end to end on small generated files: a backfill quarter straddling the 2026
band change (computed by hand), the output contract, re-runs, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines import cli, warehouse
from pipelines.errors import InputError, ValidationFailed
from pipelines.ncc11 import job
from tests.ncc11.fixtures import QUARTER, write_quarter
from tests.warehouse_copy import copy_warehouse


@pytest.fixture
def quarter_dir(tmp_path: Path) -> Path:
    return write_quarter(tmp_path / "in")


def energy(wh: Path) -> dict[tuple[str, str], dict]:
    rows = warehouse.query("SELECT * FROM ncc11_energy", wh).to_dicts()
    return {(r["distributor"], r["band"]): r for r in rows}


def test_backfill_quarter_straddling_the_band_change(workspace, quarter_dir):
    job.run(QUARTER, quarter_dir)
    rows = energy(workspace / "warehouse.sqlite")
    # punta hours: March+April (61 days) x 4 (18-21) + May (31 days) x 6 (10-12, 18-20) = 430
    # intermedia: 61 x 12 + 31 x 9 = 1011; valle: 61 x 8 + 31 x 9 = 767 (total 2208 = 92 days x 24)
    hours = {"punta": 430, "intermedia": 1011, "valle": 767}
    for band, n in hours.items():
        d1, d2 = rows[("D1", band)], rows[("D2", band)]
        assert d1["spot_energy_mwh"] == pytest.approx(n)
        assert d1["ccs_usd"] == pytest.approx(100.0 * n)
        assert d1["peste_usd_mwh"] == pytest.approx(100.0)
        assert d1["ccc_usd"] == pytest.approx(2 * 50.0 * n)
        assert d1["pmce_usd_mwh"] == pytest.approx((100.0 * n + 100.0 * n) / (3.0 * n))
        assert d2["ccs_usd"] == pytest.approx(-60.0 * n)  # over-contracted: negative spot cost kept
        assert d2["peste_usd_mwh"] == pytest.approx(60.0)
        assert d2["pmce_usd_mwh"] == pytest.approx((400.0 * n - 60.0 * n) / (4.0 * n))


def test_power_tables_by_hand(workspace, quarter_dir):
    job.run(QUARTER, quarter_dir)
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    month = {
        (r[0], r[1]): r[2] for r in con.sql("SELECT distributor, month, ccp_usd FROM ncc11_power_month").fetchall()
    }
    power = {
        r[0]: r[1:] for r in con.sql("SELECT distributor, ccp_usd, demax_kw_sum, scp_usd FROM ncc11_power").fetchall()
    }
    # D1: 1000 kW x 9 + DFNC x 8.5 -> 9850, 10700, 11550; quarter 32100; SCP = 32100 - 8.5 x 4800 = -8700
    assert [month[("D1", m)] for m in ("2026-03", "2026-04", "2026-05")] == pytest.approx([9850.0, 10700.0, 11550.0])
    assert power["D1"] == pytest.approx((32100.0, 4800.0, -8700.0))
    # D2: 2000 x 9 = 18000 a month; 54000; SCP = 54000 - 8.5 x 6000 = 3000
    assert power["D2"] == pytest.approx((54000.0, 6000.0, 3000.0))


def test_output_tables_follow_the_contract(workspace, quarter_dir):
    job.run(QUARTER, quarter_dir)
    contract = {
        "ncc11_energy": [
            "quarter",
            "distributor",
            "band",
            "spot_energy_mwh",
            "ccs_usd",
            "peste_usd_mwh",
            "contract_energy_mwh",
            "ccc_usd",
            "total_demand_mwh",
            "pmce_usd_mwh",
        ],
        "ncc11_power_month": ["quarter", "month", "distributor", "ccp_usd", "dfnc_kw", "demax_kw"],
        "ncc11_power": ["quarter", "distributor", "ccp_usd", "demax_kw_sum", "scp_usd"],
    }
    keys = {
        "ncc11_energy": "quarter, distributor, band",
        "ncc11_power_month": "quarter, month, distributor",
        "ncc11_power": "quarter, distributor",
    }
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    for table, columns in contract.items():
        present = [r[0] for r in con.sql(f"DESCRIBE {table}").fetchall()]
        assert set(columns) <= set(present), table
        dupes = con.execute(f"SELECT count(*) - count(DISTINCT ({keys[table]})) FROM {table}").fetchall()[0][0]
        assert dupes == 0
        # DuckLake keeps the rows as Parquet files under <lake>/main/<table>/quarter=<quarter>/
        files = list((workspace / "lake" / "main" / table / f"quarter={QUARTER}").glob("ducklake-*.parquet"))
        assert files, table
        lake_rows = con.execute("SELECT count(*) FROM read_parquet(?)", [[str(f) for f in files]]).fetchall()[0][0]
        assert lake_rows == con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    assert con.sql("SELECT DISTINCT band FROM ncc11_energy ORDER BY 1").fetchall() == [
        ("intermedia",),
        ("punta",),
        ("valle",),
    ]
    assert (
        con.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name='ncc11_energy' AND column_name='quarter'"
        ).fetchall()[0][0]
        == "VARCHAR"
    )


def test_rerun_replaces_the_quarter_and_keeps_other_quarters(workspace, tmp_path, quarter_dir):
    job.run(QUARTER, quarter_dir)
    job.run("2026-06", write_quarter(tmp_path / "june", "2026-06"))
    job.run(QUARTER, quarter_dir)
    con = warehouse.connect(workspace / "warehouse.sqlite", read_only=True)
    counts = dict(con.sql("SELECT quarter, count(*) FROM ncc11_energy GROUP BY 1").fetchall())
    assert counts == {QUARTER: 6, "2026-06": 6}
    assert con.execute("SELECT count(*) FROM run_manifests WHERE status = 'published'").fetchall()[0][0] == 3
    manifest = con.execute("SELECT manifest FROM run_manifests ORDER BY finished_at DESC LIMIT 1").fetchall()[0][0]
    assert '"sha256"' in manifest and '"timings_s"' in manifest


def _mutate(folder: Path, name: str, fn) -> None:
    path = folder / f"{name}.csv"
    fn(pl.read_csv(path, infer_schema=False)).write_csv(path)


BAD_INPUTS = {
    "missing file": (lambda d: (d / "firm_demand.csv").unlink(), InputError, ["firm_demand.csv"]),
    "missing column": (
        lambda d: _mutate(d, "nodal_prices", lambda f: f.drop("price_usd_mwh")),
        InputError,
        ["nodal_prices.csv", "price_usd_mwh"],
    ),
    "unparsable number": (
        lambda d: _mutate(
            d,
            "spot_demand",
            lambda f: f.with_columns(
                energy_mwh=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("1,5")).otherwise("energy_mwh")
            ),
        ),
        InputError,
        ["spot_demand.csv", "energy_mwh", "line 6", "'1,5'"],
    ),
    "unparsable timestamp": (
        lambda d: _mutate(
            d,
            "total_demand",
            lambda f: f.with_columns(
                hour=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("01/03/2026 00:00")).otherwise("hour")
            ),
        ),
        InputError,
        ["total_demand.csv", "hour", "line 2"],
    ),
    "duplicate key": (
        lambda d: _mutate(d, "nodal_prices", lambda f: pl.concat([f, f.head(1)])),
        ValidationFailed,
        ["nodal_prices.csv", "duplicate_slots", "node=N1", "first duplicated hour: 2026-03-01 00:00"],
    ),
    "missing hours": (
        lambda d: _mutate(d, "spot_demand", lambda f: f.filter(~f["hour"].str.starts_with("2026-04-02"))),
        ValidationFailed,
        ["spot_demand.csv", "missing_slots", "distributor=D1 node=N1", "first missing hour: 2026-04-02 00:00"],
    ),
    "extra hours": (
        lambda d: _mutate(
            d, "contract_dispatch", lambda f: pl.concat([f, f.head(1).with_columns(hour=pl.lit("2026-06-01 00:00"))])
        ),
        ValidationFailed,
        ["contract_dispatch.csv", "outside_slots", "first outside the quarter hour: 2026-06-01 00:00"],
    ),
    "month outside the quarter": (
        lambda d: _mutate(
            d,
            "firm_demand",
            lambda f: f.with_columns(
                month=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("2026-09")).otherwise("month")
            ),
        ),
        ValidationFailed,
        ["firm_demand.csv", "expect_column_values_to_be_in_set", "2026-09"],
    ),
    "distributor missing from a file": (
        lambda d: _mutate(d, "total_demand", lambda f: f.filter(f["distributor"] == "D1")),
        ValidationFailed,
        ["distributor D2 is missing from total_demand"],
    ),
    "prefpot absent": (
        lambda d: _mutate(d, "parameters", lambda f: f.with_columns(name=pl.lit("other"))),
        ValidationFailed,
        ["parameters.csv", "prefpot_usd_kw_month"],
    ),
    "prefpot not positive": (
        lambda d: _mutate(d, "parameters", lambda f: f.with_columns(value=pl.lit("0"))),
        ValidationFailed,
        ["prefpot_usd_kw_month", "expect_column_values_to_be_between"],
    ),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse where the good quarter is published, made once for the bad-input cases (each copies it)."""
    base = tmp_path_factory.mktemp("published")
    job.run(QUARTER, write_quarter(base / "in"), warehouse=base / "warehouse.sqlite", lake_root=base / "lake")
    return base


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_fails_clearly_and_keeps_previous_results(case, published, workspace, quarter_dir, capsys):
    copy_warehouse(
        published / "warehouse.sqlite", published / "lake", workspace / "warehouse.sqlite", workspace / "lake"
    )
    before = energy(workspace / "warehouse.sqlite")
    assert len(before) == 6, before  # 2 distributors x 3 bands, as published
    damage, error, words = BAD_INPUTS[case]
    damage(quarter_dir)
    with pytest.raises(error) as raised:
        job.run(QUARTER, quarter_dir)
    for word in words:
        assert word in str(raised.value), str(raised.value)
    assert energy(workspace / "warehouse.sqlite") == before
    # the failed run is recorded, with its reason, and published nothing
    failed = warehouse.query("SELECT snapshot_id, manifest FROM run_manifests WHERE status = 'failed'")
    assert failed.height == 1 and failed["snapshot_id"][0] is None
    assert words[0] in failed["manifest"][0]
    # the CLI turns the same failure into a message and a non-zero exit code
    assert cli.main(["ncc11", "--quarter", QUARTER, "--input", str(quarter_dir)]) == 2
    assert words[0] in capsys.readouterr().err


def test_quarter_must_be_yyyy_mm(workspace, quarter_dir, capsys):
    assert cli.main(["ncc11", "--quarter", "2026-3", "--input", str(quarter_dir)]) == 2
    assert "quarter must be YYYY-MM" in capsys.readouterr().err


def test_unknown_band_in_block_programming(workspace, tmp_path):
    folder = tmp_path / "blocks"
    write_quarter(folder)
    for name in ("nodal_prices", "spot_demand", "contract_dispatch", "total_demand"):
        _mutate(
            folder,
            name,
            lambda f: (
                f.filter(f["hour"].str.starts_with("2026-03-01 00")).drop("hour").with_columns(block=pl.lit("B1"))
            ),
        )
    pl.DataFrame({"block": ["B1"], "band": ["pico"], "hours": [2208]}).write_csv(folder / "blocks.csv")
    with pytest.raises(ValidationFailed, match="blocks.csv: expect_column_values_to_be_in_set.*pico"):
        job.run(QUARTER, folder)


def test_block_programming_end_to_end(workspace, tmp_path):
    folder = tmp_path / "blocks"
    write_quarter(folder)
    for name in ("nodal_prices", "spot_demand", "contract_dispatch", "total_demand"):
        _mutate(
            folder,
            name,
            lambda f: (
                f.filter(f["hour"].str.starts_with("2026-03-01 0"))
                .drop("hour")
                .with_columns(block=pl.lit("B"))
                .with_row_index("i")
                .with_columns(block=pl.format("B{}", pl.col("i") % 3))
                .drop("i")
                .unique(subset=[c for c in f.columns if c not in ("hour",)] + ["block"], keep="first")
            ),
        )
    pl.DataFrame(
        {"block": ["B0", "B1", "B2"], "band": ["punta", "intermedia", "valle"], "hours": [430.0, 1011.0, 767.0]}
    ).write_csv(folder / "blocks.csv")
    job.run(QUARTER, folder)
    rows = energy(workspace / "warehouse.sqlite")
    assert rows[("D1", "punta")]["ccs_usd"] == pytest.approx(100.0 * 430)
    assert rows[("D2", "valle")]["spot_energy_mwh"] == pytest.approx(-767.0)
