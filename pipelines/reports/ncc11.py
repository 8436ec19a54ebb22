"""The NCC-11 reports: one programming quarter, and the annual Informe de Costos Mayoristas (the
four tariff quarters of a year: Feb, May, Aug, Nov), per distributor, from the published tables
ncc11_energy, ncc11_power_month, ncc11_power and ncc11_total_cost as of one snapshot.

    mayorista report ncc11 --quarter YYYY-MM [--as-of RUN_ID]
    mayorista report ncc11 --year YYYY [--as-of RUN_ID]

Files: `<lake>/reports/ncc11/quarter=Q/ncc11-Q.{html,pdf}` and `<lake>/reports/ncc11/year=Y/informe-Y.{html,pdf}`
(a past publication under `.../ncc11/as-of=<run>/...`)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines import config, periods
from pipelines.reports import charts
from pipelines.reports import expost as expost_section
from pipelines.reports.document import MISSING, ReportFiles, as_of_folder, render_html, write
from pipelines.reports.source import Source, open_source

logger = logging.getLogger(__name__)

BANDS = ("punta", "intermedia", "valle")
TARIFF_QUARTER_MONTHS = (2, 5, 8, 11)  # the regulated tariff quarters: Feb-Apr, May-Jul, Aug-Oct, Nov-Jan
_BAND_ORDER = "CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END"
_COST_COLORS = {
    "CCS (spot)": "#E69F00",
    "CCC (contracts)": "#0072B2",
    "CCP (power)": "#009E73",
    "other 11.1": "#CC79A7",
}


def tariff_year(quarter: str) -> int | None:
    """The tariff year whose Informe includes `quarter` (None for a quarter not starting a tariff quarter)."""
    first = periods.parse_month(quarter, "quarter")
    return first.year if first.month in TARIFF_QUARTER_MONTHS else None


def year_quarters(year: int) -> list[str]:
    return [f"{year:04d}-{m:02d}" for m in TARIFF_QUARTER_MONTHS]


def _ratio(num: float | None, den: float | None) -> float | None:
    """A price from sums, NULL on a zero denominator (as the pipeline computes them: |den| < 1e-9)."""
    if num is None or den is None or abs(den) < 1e-9:
        return None
    return num / den


@dataclass
class QuarterData:
    quarter: str
    energy: pl.DataFrame
    power_month: pl.DataFrame
    power: pl.DataFrame
    total_cost: pl.DataFrame  # empty when other_costs was not given

    @property
    def distributors(self) -> list[str]:
        return sorted(set(self.energy["distributor"]) | set(self.power["distributor"]))


def read_quarter(src: Source, quarter: str) -> QuarterData:
    def table(name: str, order: str) -> pl.DataFrame:
        if not src.has(name):
            return pl.DataFrame()
        return src.frame(f"SELECT * FROM {{t}} WHERE quarter = ? ORDER BY {order}", [quarter], t=name)

    return QuarterData(
        quarter,
        table("ncc11_energy", f"distributor, {_BAND_ORDER}"),
        table("ncc11_power_month", "distributor, month"),
        table("ncc11_power", "distributor"),
        table("ncc11_total_cost", "distributor, month"),
    )


def _rows(frame: pl.DataFrame, distributor: str) -> list[dict[str, Any]]:
    if not frame.height:
        return []
    return frame.filter(pl.col("distributor") == distributor).to_dicts()


def _energy_total(bands: list[dict[str, Any]]) -> dict[str, Any]:
    """The quarter over all bands: sums, and the prices of those sums (NULL on a zero denominator)."""
    total = {
        k: sum(r[k] for r in bands)
        for k in ("spot_energy_mwh", "ccs_usd", "contract_energy_mwh", "ccc_usd", "total_demand_mwh")
    }
    total["peste_usd_mwh"] = _ratio(total["ccs_usd"], total["spot_energy_mwh"])
    total["pmce_usd_mwh"] = _ratio(total["ccc_usd"] + total["ccs_usd"], total["total_demand_mwh"])
    return total


def _distributor(data: QuarterData, d: str, previous: QuarterData | None) -> dict[str, Any]:
    bands = _rows(data.energy, d)
    months = _rows(data.power_month, d)
    for m in months:  # the month's part of SCP: CCP[d,m] - PREFPOT * DEMAX[d,m] (11.7 summed over the months)
        m["balance_usd"] = (
            m["ccp_usd"] - m["prefpot_usd_kw_month"] * m["demax_kw"]
            if m.get("prefpot_usd_kw_month") is not None
            else None
        )
    power = (_rows(data.power, d) or [None])[0]
    costs = _rows(data.total_cost, d)
    change = []
    if previous is not None:
        before = {r["band"]: r for r in _rows(previous.energy, d)}
        for r in bands:
            old = before.get(r["band"])
            change.append(
                {
                    "band": r["band"],
                    "pmce_now": r["pmce_usd_mwh"],
                    "pmce_before": old and old["pmce_usd_mwh"],
                    "pmce_delta": None
                    if old is None or old["pmce_usd_mwh"] is None or r["pmce_usd_mwh"] is None
                    else r["pmce_usd_mwh"] - old["pmce_usd_mwh"],
                    "peste_now": r["peste_usd_mwh"],
                    "peste_before": old and old["peste_usd_mwh"],
                }
            )
        old_power = (_rows(previous.power, d) or [None])[0]
        if old_power and power:
            change.append(
                {
                    "band": "CCP (USD)",
                    "pmce_now": power["ccp_usd"],
                    "pmce_before": old_power["ccp_usd"],
                    "pmce_delta": power["ccp_usd"] - old_power["ccp_usd"],
                    "peste_now": None,
                    "peste_before": None,
                }
            )
    return {
        "name": d,
        "bands": bands,
        "energy_total": _energy_total(bands) if bands else None,
        "months": months,
        "power": power,
        "costs": costs,
        "costs_total": {
            k: (None if any(c[k] is None for c in costs) else sum(c[k] for c in costs))
            for k in ("ccc_usd", "ccs_usd", "ccp_usd", "other_usd", "total_usd")
        }
        if costs
        else None,
        "change": change,
    }


def _quarter_charts(
    data: QuarterData, dists: list[dict[str, Any]], previous: QuarterData | None
) -> list[tuple[str, str]]:
    """(svg, caption) pairs: the at-a-glance views across distributors."""
    names = [d["name"] for d in dists]
    if not names or not data.energy.height:
        return []
    by_band = {
        b: [next((r for r in d["bands"] if r["band"] == b), {}).get(key) for d in dists]
        for b in BANDS
        for key in ["peste_usd_mwh"]
    }
    pmce = {b: [next((r for r in d["bands"] if r["band"] == b), {}).get("pmce_usd_mwh") for d in dists] for b in BANDS}
    nulls = sum(v is None for vs in [*by_band.values(), *pmce.values()] for v in vs)
    note = f" {nulls} undefined price(s) (zero energy) are left out." if nulls else ""
    out = [
        (
            charts.grouped_bars(
                names, by_band, title="PESTE: spot energy price by band (11.3)", ylabel="USD/MWh", colors=charts.BANDS
            ),
            "PESTE = CCS / spot energy, per distributor and band." + note,
        ),
        (
            charts.grouped_bars(
                names, pmce, title="PMCE: average purchase price by band (11.5)", ylabel="USD/MWh", colors=charts.BANDS
            ),
            "PMCE = (CCC + CCS) / total demand, per distributor and band." + note,
        ),
        (
            charts.stacked_bars(
                names,
                {
                    "spot": [d["energy_total"]["spot_energy_mwh"] for d in dists],
                    "contracts": [d["energy_total"]["contract_energy_mwh"] for d in dists],
                },
                title="Energy: spot / contract split",
                xlabel="share of the quarter's energy (MWh)",
                percent=True,
                colors={"spot": "#E69F00", "contracts": "#0072B2"},
            ),
            "Shares of |spot| + contract energy; negative spot energy (over-contracted hours) is drawn left of zero.",
        ),
        (
            charts.stacked_bars(
                names,
                {
                    "CCS (spot)": [d["energy_total"]["ccs_usd"] for d in dists],
                    "CCC (contracts)": [d["energy_total"]["ccc_usd"] for d in dists],
                },
                title="Energy cost: spot / contract split",
                xlabel="USD",
                colors=_COST_COLORS,
            ),
            "CCS (11.3) and CCC (11.4) summed over the bands.",
        ),
    ]
    months = sorted({m["month"] for d in dists for m in d["months"]})
    if months:
        ccp = {
            d["name"]: [next((m["ccp_usd"] for m in d["months"] if m["month"] == month), None) for month in months]
            for d in dists
        }
        out.append(
            (
                charts.grouped_bars(months, ccp, title="CCP: power purchase cost per month (11.6)", ylabel="USD"),
                "CCP[d,m] = Σ PRECIOPOT × POTCON + DFNC × PREFPOT, per distributor.",
            )
        )
        balance = {
            d["name"]: [next((m["balance_usd"] for m in d["months"] if m["month"] == month), None) for month in months]
            for d in dists
        }
        out.append(
            (
                charts.grouped_bars(months, balance, title="SCP per month: CCP − PREFPOT × DEMAX (11.7)", ylabel="USD"),
                "The three months sum to the quarter's SCP; negative: contracts cost less than the reference price.",
            )
        )
    if previous is not None and previous.energy.height:
        before = {d: _energy_total(_rows(previous.energy, d)) for d in names if _rows(previous.energy, d)}
        out.append(
            (
                charts.grouped_bars(
                    names,
                    {
                        previous.quarter: [before[d]["pmce_usd_mwh"] if d in before else None for d in names],
                        data.quarter: [d["energy_total"]["pmce_usd_mwh"] for d in dists],
                    },
                    title=f"PMCE over the quarter: {previous.quarter} → {data.quarter}",
                    ylabel="USD/MWh",
                    colors={previous.quarter: "#9aa5b1", data.quarter: "#0b4f8a"},
                ),
                f"Against the previous published quarter ({previous.quarter}), all bands together.",
            )
        )
    if data.total_cost.height:
        totals = [d["costs_total"] or {} for d in dists]
        out.append(
            (
                charts.stacked_bars(
                    names,
                    {
                        "CCC (contracts)": [t.get("ccc_usd") for t in totals],
                        "CCS (spot)": [t.get("ccs_usd") for t in totals],
                        "CCP (power)": [t.get("ccp_usd") for t in totals],
                        "other 11.1": [t.get("other_usd") for t in totals],
                    },
                    title="What each distributor passes to tariffs (11.1), quarter",
                    xlabel="USD",
                    colors=_COST_COLORS,
                ),
                "ncc11_total_cost summed over the quarter's months.",
            )
        )
    return out


def _previous(src: Source, quarter: str) -> QuarterData | None:
    if not src.has("ncc11_energy"):
        return None
    before = src.frame("SELECT max(quarter) AS q FROM {e} WHERE quarter < ?", [quarter], e="ncc11_energy")["q"][0]
    return read_quarter(src, before) if before else None


def quarter_html(src: Source, quarter: str) -> str:
    periods.quarter_months(quarter)
    data = read_quarter(src, quarter)
    previous = _previous(src, quarter)
    dists = [_distributor(data, d, previous) for d in data.distributors]
    run = src.run_row("ncc11", quarter)
    checks = src.checks(run["run_id"]).to_dicts() if run else []
    months = periods.quarter_months(quarter)
    return render_html(
        "ncc11_quarter.html.j2",
        title=f"NCC-11 wholesale costs, quarter {quarter}",
        kicker="Informe de Costos Mayoristas · NCC-11 · programming quarter",
        subtitle=f"Months {', '.join(months)} · {len(dists)} distributor(s) · warehouse snapshot {src.snapshot_id}",
        quarter=quarter,
        data=data,
        dists=dists,
        previous=previous.quarter if previous else None,
        charts=_quarter_charts(data, dists, previous),
        run=run,
        checks=checks,
        snapshot_id=src.snapshot_id,
        as_of_run=src.as_of_run,
        missing=MISSING,
        bands=BANDS,
        expost=expost_section.quarter_view(src, quarter),
    )


def year_html(src: Source, year: int) -> str:
    quarters = year_quarters(year)
    datas = {q: read_quarter(src, q) for q in quarters}
    published = [q for q in quarters if datas[q].energy.height or datas[q].power.height]
    names = sorted(set().union(*(set(d.distributors) for d in datas.values())))
    dists = []
    for name in names:
        rows = []
        for q in published:
            bands = _rows(datas[q].energy, name)
            power = (_rows(datas[q].power, name) or [None])[0]
            costs = _rows(datas[q].total_cost, name)
            rows.append(
                {
                    "quarter": q,
                    "bands": {r["band"]: r for r in bands},
                    "total": _energy_total(bands) if bands else None,
                    "power": power,
                    "other_usd": sum(c["other_usd"] for c in costs) if costs else None,
                    "total_usd": (
                        None if any(c["total_usd"] is None for c in costs) else sum(c["total_usd"] for c in costs)
                    )
                    if costs
                    else None,
                }
            )
        figures = []
        if len(published) >= 1 and any(r["total"] for r in rows):
            pmce = {b: [(r["bands"].get(b) or {}).get("pmce_usd_mwh") for r in rows] for b in BANDS}
            figures.append(
                (
                    charts.lines(
                        published,
                        pmce,
                        title=f"{name}: PMCE by band and quarter",
                        ylabel="USD/MWh",
                        colors=charts.BANDS,
                        height=2.3,
                    ),
                    "Average purchase price (11.5) per band.",
                )
            )
            cost = {
                "CCS (spot)": [(r["total"] or {}).get("ccs_usd") for r in rows],
                "CCC (contracts)": [(r["total"] or {}).get("ccc_usd") for r in rows],
                "CCP (power)": [(r["power"] or {}).get("ccp_usd") for r in rows],
                "other 11.1": [r["other_usd"] for r in rows],
            }
            figures.append(
                (
                    charts.stacked_bars(
                        published, cost, title=f"{name}: costs by quarter", xlabel="USD", colors=_COST_COLORS
                    ),
                    "CCS, CCC, CCP and the other 11.1 components (when given).",
                )
            )
        dists.append({"name": name, "rows": rows, "charts": figures})
    runs = []
    for q in quarters:
        run = src.run_row("ncc11", q) if q in published else None
        runs.append(
            {
                "quarter": q,
                "months": ", ".join(periods.quarter_months(q)),
                "run": run,
                "checks": src.checks(run["run_id"]).to_dicts() if run else [],
            }
        )
    return render_html(
        "ncc11_year.html.j2",
        title=f"Informe de Costos Mayoristas {year}",
        kicker="NCC-11 · annual report to the regulator (11.1)",
        subtitle=f"Tariff quarters {', '.join(quarters)} · {len(published)} of 4 published · warehouse snapshot {src.snapshot_id}",
        year=year,
        quarters=quarters,
        published=published,
        dists=dists,
        runs=runs,
        snapshot_id=src.snapshot_id,
        as_of_run=src.as_of_run,
        missing=MISSING,
        bands=BANDS,
        expost={q: expost_section.quarter_view(src, q) for q in published},
    )


def render_quarter(
    quarter: str,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
    as_of: str | None = None,
    *,
    snapshot_id: int | None = None,
) -> ReportFiles:
    """Write the quarter's report (HTML and PDF); `as_of` a run id renders that run's snapshot."""
    periods.quarter_months(quarter)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot_id) as src:
        html = quarter_html(src, quarter)
    folder = as_of_folder(config.lake_root(lake_root), "ncc11", as_of) / f"quarter={quarter}"
    return write(html, folder / f"ncc11-{quarter}")


def render_year(
    year: int,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
    as_of: str | None = None,
    *,
    snapshot_id: int | None = None,
) -> ReportFiles:
    """Write the annual Informe (the four tariff quarters of `year`)."""
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot_id) as src:
        html = year_html(src, int(year))
    folder = as_of_folder(config.lake_root(lake_root), "ncc11", as_of) / f"year={int(year):04d}"
    return write(html, folder / f"informe-{int(year):04d}")


def render_after_publish(
    quarter: str,
    snapshot_id: int | None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> list[ReportFiles]:
    """What the DAG writes after a quarter's publish: its report and its tariff year's Informe, as of
    the snapshot the run published."""
    written = [render_quarter(quarter, warehouse, lake_root, snapshot_id=snapshot_id)]
    year = tariff_year(quarter)
    if year is not None:
        written.append(render_year(year, warehouse, lake_root, snapshot_id=snapshot_id))
    return written
