"""The NCC-11 quarter report and the annual Informe in a real headless Chromium: nothing requested
but the file, no script error, a screenshot that is not blank, the figures of the warehouse to the
displayed precision, in Spanish by default (the norm's terms), a past snapshot's own figures
(--as-of), NULL prices, the Informe's draft banner and totals, and a quarter never published (exit 2)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines import cli, warehouse
from pipelines.errors import MayoristaError
from pipelines.periods import Quarter
from pipelines.quality import CheckResult
from pipelines.reports import ncc11
from pipelines.reports.i18n import words
from tests.reports.conftest import assert_clean, cells, needs_chromium, number, publish, shown_equals

pytestmark = needs_chromium
BANDS = ["punta", "intermedia", "valle"]


def quarter_tables(quarter: str, factor: float = 1.0) -> dict[str, pl.DataFrame]:
    """D1 ordinary (prices scaled by `factor`); D2 with no spot energy and no demand at all in valle,
    so its PESTE and PMCE there are NULL (undefined), as the pipeline publishes them."""
    months = [quarter, f"{quarter[:5]}{int(quarter[5:]) + 1:02d}", f"{quarter[:5]}{int(quarter[5:]) + 2:02d}"]
    rows = []
    for d, spot, contract, price in (
        ("D1", [40.5, 30.25, 20.125], [60.0, 50.0, 40.0], [105.1234, 60.5, 45.0]),
        ("D2", [10.0, 5.0, 0.0], [20.0, 10.0, 0.0], [95.0, 55.0, 0.0]),
    ):
        for b, s, c, p in zip(BANDS, spot, contract, price):
            ccs, ccc = s * p * factor, c * 80.0
            rows.append(
                {
                    "quarter": quarter,
                    "distributor": d,
                    "band": b,
                    "spot_energy_mwh": s,
                    "ccs_usd": ccs,
                    "peste_usd_mwh": ccs / s if s else None,
                    "contract_energy_mwh": c,
                    "ccc_usd": ccc,
                    "total_demand_mwh": s + c,
                    "pmce_usd_mwh": (ccs + ccc) / (s + c) if s + c else None,
                }
            )
    power_month = pl.DataFrame(
        [
            {
                "quarter": quarter,
                "month": m,
                "distributor": d,
                "ccp_usd": 1000.0 * k + (500 if d == "D2" else 0),
                "contract_power_kw": 100.0,
                "contract_cost_usd": 900.0,
                "dfnc_kw": 10.0 * k,
                "demax_kw": 110.0 + k,
                "prefpot_usd_kw_month": 8.9,
            }
            for d in ("D1", "D2")
            for k, m in enumerate(months, start=1)
        ]
    )
    power = (
        power_month.group_by("quarter", "distributor")
        .agg(
            ccp_usd=pl.col("ccp_usd").sum(),
            demax_kw_sum=pl.col("demax_kw").sum(),
            scp_usd=pl.col("ccp_usd").sum() - 8.9 * pl.col("demax_kw").sum(),
            prefpot_usd_kw_month=pl.lit(8.9),
        )
        .sort("distributor")
    )
    total = pl.DataFrame(
        [
            {
                "quarter": quarter,
                "month": m,
                "distributor": d,
                "ccc_usd": 100.0,
                "ccs_usd": -20.5,
                "ccp_usd": 1000.0,
                "other_usd": 12.25,
                "total_usd": 1091.75,
            }
            for d in ("D1", "D2")
            for m in months
        ]
    )
    return {
        "ncc11_energy": pl.DataFrame(rows),
        "ncc11_power_month": power_month,
        "ncc11_power": power,
        "ncc11_total_cost": total,
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("ncc11-reports")
    wh, lake = base / "warehouse.sqlite", base / "lake"
    inputs = base / "in"
    inputs.mkdir()
    (inputs / "nodal_prices.csv").write_text("node,hour,price_usd_mwh\nN1,2026-05-01 00:00,100\n")
    warning = CheckResult(
        "total_demand vs contract_dispatch + spot_demand",
        "expect_column_values_to_be_between",
        "rel_diff",
        "warning",
        False,
        3,
        "e.g. D1 2026-05-03 19:00",
    )
    old_feb = publish("ncc11", "2026-02", quarter_tables("2026-02", 0.9), "quarter", wh, lake)
    first = publish(
        "ncc11",
        "2026-05",
        quarter_tables("2026-05", 1.0),
        "quarter",
        wh,
        lake,
        [inputs / "nodal_prices.csv"],
        [warning],
    )
    second = publish(
        "ncc11", "2026-05", quarter_tables("2026-05", 1.5), "quarter", wh, lake, [inputs / "nodal_prices.csv"]
    )
    return {"wh": wh, "lake": lake, "first": first, "second": second, "feb": old_feb}


def _check_energy(page, wh: Path, snapshot: int) -> None:
    data = warehouse.query(f"SELECT * FROM ncc11_energy AT (VERSION => {snapshot}) WHERE quarter = '2026-05'", wh)
    assert data.height == 6
    for row in data.iter_rows(named=True):
        shown = cells(page, f'table.energy[data-distributor="{row["distributor"]}"] tr[data-band="{row["band"]}"]')
        assert len(shown) == 1, (row["distributor"], row["band"])
        band, spot, ccs, peste, contract, ccc, total, pmce = shown[0]
        assert band == words("es")(f"band.{row['band']}")  # "banda punta": the norm's term
        for text, key, decimals in (
            (spot, "spot_energy_mwh", 1),
            (ccs, "ccs_usd", 0),
            (peste, "peste_usd_mwh", 2),
            (contract, "contract_energy_mwh", 1),
            (ccc, "ccc_usd", 0),
            (total, "total_demand_mwh", 1),
            (pmce, "pmce_usd_mwh", 2),
        ):
            assert shown_equals(text, row[key], decimals), (row["distributor"], row["band"], key, text, row[key])


def test_quarter_report_shows_the_warehouse_figures(published, open_report):
    (files,) = ncc11.render_quarter(Quarter.parse("2026-05"), warehouse=published["wh"], lake_root=published["lake"])
    assert files.html == published["lake"] / "reports" / "ncc11" / "quarter=2026-05" / "ncc11-2026-05.html"
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
    seen = open_report(files.html)
    assert_clean(seen, files.html)
    _check_energy(seen.page, published["wh"], published["second"][1])
    # NULL prices: D2 valle has neither spot energy nor demand
    valle = cells(seen.page, 'table.energy[data-distributor="D2"] tr[data-band="valle"]')[0]
    assert valle[3] == "—" and valle[7] == "—"
    power = warehouse.query(
        "SELECT distributor, ccp_usd, scp_usd FROM ncc11_power WHERE quarter = '2026-05'", published["wh"]
    )
    for d, ccp, scp in power.rows():
        total = cells(seen.page, f'table.power[data-distributor="{d}"] tr[data-month="quarter"]')[0]
        # no sum of DEMAX kW over the months: the kW cells of the quarter say so, CCP is summed
        assert shown_equals(total[-2], ccp, 0) and "kW" in total[1] and total[-1] == ""
        scp_row = cells(seen.page, f'table.power[data-distributor="{d}"] tr[data-month="scp"]')[0]
        assert scp_row[0].startswith("SCP") and shown_equals(scp_row[-1], scp, 0)  # a number cell holds a number
    costs = cells(seen.page, 'table.total-cost[data-distributor="D1"] tr[data-month="quarter"]')[0]
    assert shown_equals(costs[5], 3 * 1091.75, 0) and shown_equals(costs[4], 3 * 12.25, 0)
    # the comparison with the previous published quarter, and the provenance with the run's input hash
    text = seen.page.inner_text("body")
    assert "Cambio frente a 2026-02" in text
    assert published["second"][0] in text
    # the header names the snapshot the data was published in
    assert f"publicados en la instantánea {published['second'][1]}" in seen.page.inner_text("header")
    assert seen.page.evaluate("document.documentElement.lang") == "es"
    assert (
        warehouse.query(
            "SELECT manifest FROM run_manifests WHERE run_id = ?", published["wh"], [published["second"][0]]
        )["manifest"][0].count("sha256")
        == 1
    )
    assert "nodal_prices.csv" in text
    assert seen.page.locator("figure svg").count() >= 7


def test_past_snapshot_renders_its_own_figures(published, open_report, capsys):
    run_id, snapshot = published["first"]
    assert (
        cli.main(
            [
                "report",
                "ncc11",
                "--quarter",
                "2026-05",
                "--as-of",
                run_id,
                "--warehouse",
                str(published["wh"]),
                "--lake",
                str(published["lake"]),
            ]
        )
        == 0
    )
    html = Path(capsys.readouterr().out.splitlines()[0])
    assert html.parent.parent.name == f"as-of={run_id}" and html.exists()
    seen = open_report(html)
    assert_clean(seen, html)
    _check_energy(seen.page, published["wh"], snapshot)
    # the first run's PESTE differs from the current one, and its warning is listed
    first = cells(seen.page, 'table.energy[data-distributor="D1"] tr[data-band="punta"]')[0][3]
    assert number(first) == pytest.approx(105.12) and first != "157.69"
    text = seen.page.inner_text("body")
    # the warning in words, not Great Expectations' internals
    assert "expect_column_values_to_be_between" not in text and "rel_diff» fuera del intervalo admitido" in text
    assert "1 no se cumplieron" in text and run_id in text
    # published in the first run's snapshot and read there: one snapshot named
    assert f"publicados en la instantánea {snapshot}" in seen.page.inner_text("header")


def test_annual_informe(published, open_report):
    (files,) = ncc11.render_year(2026, warehouse=published["wh"], lake_root=published["lake"])
    seen = open_report(files.html)
    assert_clean(seen, files.html)
    status = {r[0]: r[2] for r in cells(seen.page, "#quarters tr")[1:]}
    assert status["2026-02"].startswith("publicado") and status["2026-05"].startswith("publicado")
    assert status["2026-08"] == "sin publicar" and status["2026-11"] == "sin publicar"
    # two quarters unpublished: the Informe says it is a draft, naming them
    draft = seen.page.inner_text("#draft")
    assert "borrador / incompleto" in draft.lower() and "2026-08" in draft and "2026-11" in draft
    energy = warehouse.query("SELECT quarter, distributor, band, pmce_usd_mwh FROM ncc11_energy", published["wh"])
    for q, d, b, pmce in energy.rows():
        row = cells(seen.page, f'table.year-prices[data-distributor="{d}"] tr[data-quarter="{q}"]')[0]
        assert shown_equals(row[4 + BANDS.index(b)], pmce, 2), (q, d, b)
    power = warehouse.query("SELECT quarter, distributor, ccp_usd, scp_usd FROM ncc11_power", published["wh"])
    for q, d, ccp, scp in power.rows():
        row = cells(seen.page, f'table.year-costs[data-distributor="{d}"] tr[data-quarter="{q}"]')[0]
        assert shown_equals(row[5], ccp, 0) and shown_equals(row[6], scp, 0)
    # annual totals per distributor, and over all distributors
    for d in ("D1", "D2"):
        year = cells(seen.page, f'table.year-costs[data-distributor="{d}"] tr[data-quarter="year"]')[0]
        assert shown_equals(year[5], sum(r[2] for r in power.rows() if r[1] == d), 0)
    everyone = cells(seen.page, '#all-distributors tr[data-quarter="year"]')[0]
    assert shown_equals(everyone[5], sum(r[2] for r in power.rows()), 0)
    assert shown_equals(everyone[6], sum(r[3] for r in power.rows()), 0)


def test_quarter_never_published_exits_2_and_writes_nothing(published, capsys):
    with pytest.raises(MayoristaError, match="2026-08 has no published run"):
        ncc11.render_quarter(Quarter.parse("2026-08"), warehouse=published["wh"], lake_root=published["lake"])
    args = ["--warehouse", str(published["wh"]), "--lake", str(published["lake"])]
    assert cli.main(["report", "ncc11", "--quarter", "2026-08", *args]) == 2
    assert cli.main(["report", "ncc11", "--year", "2027", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("mayorista report: error: ") for line in err)
    assert not (published["lake"] / "reports" / "ncc11" / "quarter=2026-08").exists()
    assert not (published["lake"] / "reports" / "ncc11" / "year=2027").exists()
