"""The NCC-11 reports: one programming quarter, and the annual Informe de Costos Mayoristas (the
four tariff quarters of a year: Feb, May, Aug, Nov), per distributor, from the published tables
ncc11_energy, ncc11_power_month, ncc11_power and ncc11_total_cost as of one snapshot.

    mayorista report ncc11 --quarter YYYY-MM [--as-of RUN_ID] [--lang en]
    mayorista report ncc11 --year YYYY [--as-of RUN_ID] [--lang en]

Files: `<lake>/reports/ncc11/quarter=Q/ncc11-Q.{html,pdf}` and `<lake>/reports/ncc11/year=Y/informe-Y.{html,pdf}`
(`.en.` before the extension in English; a past publication under `.../ncc11/as-of=<run>/...`).
The DAG and the CLI call the same entries: `render(Quarter, ...)` (the quarter and its tariff year's
Informe), `render_quarter(Quarter, ...)`, `render_year(year, ...)`."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipelines import config, periods
from pipelines.errors import MayoristaError
from pipelines.periods import Quarter
from pipelines.reports import charts
from pipelines.reports import expost as expost_section
from pipelines.reports.document import (
    MISSING,
    ReportFiles,
    as_of_folder,
    check_words,
    render_html,
    subtitle,
    target,
    write,
)
from pipelines.reports.i18n import Words, words
from pipelines.reports.source import Source, open_source

logger = logging.getLogger(__name__)

BANDS = ("punta", "intermedia", "valle")
TARIFF_QUARTER_MONTHS = (2, 5, 8, 11)  # the regulated tariff quarters: Feb-Apr, May-Jul, Aug-Oct, Nov-Jan
_BAND_ORDER = "CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END"
_COST_COLORS = {"CCS": "#E69F00", "CCC": "#0072B2", "CCP": "#009E73", "other": "#CC79A7"}


def _cost_colors(t: Words) -> dict[str, str]:
    return {t(f"chart.cost_{k.lower()}"): c for k, c in _COST_COLORS.items()}


def _band_series(t: Words, series: dict[str, Any]) -> dict[str, Any]:
    return {t(f"band.{b}"): v for b, v in series.items()}


def _band_colors(t: Words) -> dict[str, str]:
    return {t(f"band.{b}"): c for b, c in charts.BANDS.items()}


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
    t: Words, data: QuarterData, dists: list[dict[str, Any]], previous: QuarterData | None
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
    note = " " + t("chart.undefined_left_out", n=nulls) if nulls else ""
    out = [
        (
            charts.grouped_bars(
                names,
                _band_series(t, by_band),
                title=t("chart.peste_title"),
                ylabel="USD/MWh",
                colors=_band_colors(t),
            ),
            t("chart.peste_caption") + note,
        ),
        (
            charts.grouped_bars(
                names, _band_series(t, pmce), title=t("chart.pmce_title"), ylabel="USD/MWh", colors=_band_colors(t)
            ),
            t("chart.pmce_caption") + note,
        ),
        (
            charts.stacked_bars(
                names,
                {
                    t("chart.spot"): [d["energy_total"]["spot_energy_mwh"] for d in dists],
                    t("chart.contracts"): [d["energy_total"]["contract_energy_mwh"] for d in dists],
                },
                title=t("chart.split_title"),
                xlabel=t("chart.split_xlabel"),
                percent=True,
                colors={t("chart.spot"): "#E69F00", t("chart.contracts"): "#0072B2"},
            ),
            t("chart.split_caption"),
        ),
        (
            charts.stacked_bars(
                names,
                {
                    t("chart.cost_ccs"): [d["energy_total"]["ccs_usd"] for d in dists],
                    t("chart.cost_ccc"): [d["energy_total"]["ccc_usd"] for d in dists],
                },
                title=t("chart.cost_split_title"),
                xlabel="USD",
                colors=_cost_colors(t),
            ),
            t("chart.cost_split_caption"),
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
                charts.grouped_bars(months, ccp, title=t("chart.ccp_title"), ylabel="USD"),
                t("chart.ccp_caption"),
            )
        )
        balance = {
            d["name"]: [next((m["balance_usd"] for m in d["months"] if m["month"] == month), None) for month in months]
            for d in dists
        }
        out.append(
            (
                charts.grouped_bars(months, balance, title=t("chart.scp_title"), ylabel="USD"),
                t("chart.scp_caption"),
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
                    title=t("chart.pmce_change_title", previous=previous.quarter, quarter=data.quarter),
                    ylabel="USD/MWh",
                    colors={previous.quarter: "#9aa5b1", data.quarter: "#0b4f8a"},
                ),
                t("chart.pmce_change_caption", previous=previous.quarter),
            )
        )
    if data.total_cost.height:
        totals = [d["costs_total"] or {} for d in dists]
        out.append(
            (
                charts.stacked_bars(
                    names,
                    {
                        t("chart.cost_ccc"): [x.get("ccc_usd") for x in totals],
                        t("chart.cost_ccs"): [x.get("ccs_usd") for x in totals],
                        t("chart.cost_ccp"): [x.get("ccp_usd") for x in totals],
                        t("chart.cost_other"): [x.get("other_usd") for x in totals],
                    },
                    title=t("chart.tariffs_title"),
                    xlabel="USD",
                    colors=_cost_colors(t),
                ),
                t("chart.tariffs_caption"),
            )
        )
    return out


def _previous(src: Source, quarter: str) -> QuarterData | None:
    if not src.has("ncc11_energy"):
        return None
    before = src.frame("SELECT max(quarter) AS q FROM {e} WHERE quarter < ?", [quarter], e="ncc11_energy")["q"][0]
    return read_quarter(src, before) if before else None


def _checks(t: Words, src: Source, run: dict | None) -> list[dict]:
    return [{**c, "words": check_words(t, c)} for c in src.checks(run["run_id"]).to_dicts()] if run else []


def quarter_html(src: Source, quarter: str, lang: str | None = None) -> str:
    t = words(lang)
    months = periods.quarter_months(quarter)
    data = read_quarter(src, quarter)
    previous = _previous(src, quarter)
    dists = [_distributor(data, d, previous) for d in data.distributors]
    run = src.run_row("ncc11", quarter)
    return render_html(
        "ncc11_quarter.html.j2",
        lang=t.lang,
        title=t("ncc11.title", quarter=quarter),
        kicker=t("ncc11.kicker"),
        subtitle=subtitle(t, t("ncc11.subtitle", months=", ".join(months), n=len(dists)), run, src.snapshot_id),
        quarter=quarter,
        data=data,
        dists=dists,
        previous=previous.quarter if previous else None,
        charts=_quarter_charts(t, data, dists, previous),
        run=run,
        checks=_checks(t, src, run),
        snapshot_id=src.snapshot_id,
        as_of_run=src.as_of_run,
        missing=MISSING,
        bands=BANDS,
        expost=expost_section.quarter_view(t, src, quarter),
    )


_COSTS = ("total_demand_mwh", "ccs_usd", "ccc_usd", "ccp_usd", "scp_usd", "other_usd", "total_usd")


def _cost_row(bands: list[dict[str, Any]], power: dict[str, Any] | None, costs: list[dict[str, Any]]) -> dict:
    """One distributor's quarter in the Informe: energy sums, power, 11.1 totals and the PMCE of the sums."""
    total = _energy_total(bands) if bands else {}
    return {
        "total_demand_mwh": total.get("total_demand_mwh"),
        "ccs_usd": total.get("ccs_usd"),
        "ccc_usd": total.get("ccc_usd"),
        "pmce_usd_mwh": total.get("pmce_usd_mwh"),
        "ccp_usd": (power or {}).get("ccp_usd"),
        "scp_usd": (power or {}).get("scp_usd"),
        "other_usd": sum(c["other_usd"] for c in costs) if costs else None,
        "total_usd": (None if any(c["total_usd"] is None for c in costs) else sum(c["total_usd"] for c in costs))
        if costs
        else None,
    }


def _sum_rows(rows: list[dict]) -> dict:
    """Totals over quarters or distributors: a sum over the rows that have the figure (NULL when none
    has it, or when one of them is NULL: a total never silently drops a part); PMCE of the sums."""
    out: dict[str, Any] = {}
    for k in _COSTS:
        values = [r.get(k) for r in rows]
        out[k] = None if not values or any(v is None for v in values) else sum(values)
    ccc, ccs, demand = out["ccc_usd"], out["ccs_usd"], out["total_demand_mwh"]
    out["pmce_usd_mwh"] = _ratio(None if ccc is None or ccs is None else ccc + ccs, demand)
    return out


def year_html(src: Source, year: int, lang: str | None = None) -> str:
    t = words(lang)
    quarters = year_quarters(year)
    datas = {q: read_quarter(src, q) for q in quarters}
    published = [q for q in quarters if datas[q].energy.height or datas[q].power.height]
    names = sorted(set().union(*(set(d.distributors) for d in datas.values())))
    dists = []
    for name in names:
        rows = []
        for q in published:
            bands = _rows(datas[q].energy, name)
            costs = _cost_row(bands, (_rows(datas[q].power, name) or [None])[0], _rows(datas[q].total_cost, name))
            rows.append({"quarter": q, "bands": {r["band"]: r for r in bands}, "costs": costs})
        figures = []
        if published and any(r["costs"]["total_demand_mwh"] is not None for r in rows):
            pmce = {b: [(r["bands"].get(b) or {}).get("pmce_usd_mwh") for r in rows] for b in BANDS}
            figures.append(
                (
                    charts.lines(
                        published,
                        _band_series(t, pmce),
                        title=t("chart.informe_pmce_title", name=name),
                        ylabel="USD/MWh",
                        colors=_band_colors(t),
                        height=2.3,
                        width=3.6,
                    ),
                    t("chart.informe_pmce_caption"),
                )
            )
            cost = {
                t("chart.cost_ccs"): [r["costs"]["ccs_usd"] for r in rows],
                t("chart.cost_ccc"): [r["costs"]["ccc_usd"] for r in rows],
                t("chart.cost_ccp"): [r["costs"]["ccp_usd"] for r in rows],
                t("chart.cost_other"): [r["costs"]["other_usd"] for r in rows],
            }
            figures.append(
                (
                    charts.stacked_bars(
                        published,
                        cost,
                        title=t("chart.informe_costs_title", name=name),
                        xlabel="USD",
                        colors=_cost_colors(t),
                        width=3.6,
                    ),
                    t("chart.informe_costs_caption"),
                )
            )
        dists.append({"name": name, "rows": rows, "charts": figures, "year": _sum_rows([r["costs"] for r in rows])})
    all_rows = [
        {"quarter": q, **_sum_rows([r["costs"] for d in dists for r in d["rows"] if r["quarter"] == q])}
        for q in published
    ]
    runs = []
    for q in quarters:
        run = src.run_row("ncc11", q) if q in published else None
        runs.append(
            {
                "quarter": q,
                "months": ", ".join(periods.quarter_months(q)),
                "run": run,
                "checks": _checks(t, src, run),
            }
        )
    missing_quarters = [q for q in quarters if q not in published]
    return render_html(
        "ncc11_year.html.j2",
        lang=t.lang,
        title=t("informe.title", year=year),
        kicker=t("informe.kicker"),
        subtitle=t(
            "informe.subtitle",
            quarters=", ".join(quarters),
            n=len(published),
            snapshot=src.snapshot_id,
        ),
        draft=t("informe.draft", missing=", ".join(missing_quarters)) if missing_quarters else "",
        year=year,
        quarters=quarters,
        published=published,
        dists=dists,
        all_rows=all_rows,
        all_year=_sum_rows(all_rows),
        runs=runs,
        snapshot_id=src.snapshot_id,
        as_of_run=src.as_of_run,
        missing=MISSING,
        bands=BANDS,
        expost={q: expost_section.quarter_view(t, src, q) for q in published},
    )


def _unpublished(what: str, snapshot_id: int, how: str) -> MayoristaError:
    return MayoristaError(f"{what} has no published run at warehouse snapshot {snapshot_id}: nothing to report ({how})")


def render_quarter(
    quarter: Quarter,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    lang: str | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> list[ReportFiles]:
    """Write the quarter's report (HTML and PDF) as of `snapshot`, or run `as_of`'s snapshot, or the
    current one; a quarter never published is a `MayoristaError` (exit 2)."""
    quarter = Quarter.of(quarter)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot) as src:
        if src.run_row("ncc11", quarter.label) is None:
            raise _unpublished(
                f"the NCC-11 quarter {quarter}",
                src.snapshot_id,
                f"run it first: mayorista ncc11 --quarter {quarter} --input DIR",
            )
        html = quarter_html(src, quarter.label, lang)
    folder = as_of_folder(config.lake_root(lake_root), "ncc11", as_of) / f"quarter={quarter}"
    return [write(html, target(folder, f"ncc11-{quarter}", lang))]


def render_year(
    year: int,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    lang: str | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> list[ReportFiles]:
    """Write the annual Informe (the four tariff quarters of `year`), marked as a draft while any
    quarter is unpublished; a year with no published quarter is a `MayoristaError` (exit 2)."""
    year = int(year)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot) as src:
        if all(src.run_row("ncc11", q) is None for q in year_quarters(year)):
            raise _unpublished(
                f"no tariff quarter of {year:04d} ({', '.join(year_quarters(year))})",
                src.snapshot_id,
                "publish a quarter first: mayorista ncc11 --quarter YYYY-MM --input DIR",
            )
        html = year_html(src, year, lang)
    folder = as_of_folder(config.lake_root(lake_root), "ncc11", as_of) / f"year={year:04d}"
    return [write(html, target(folder, f"informe-{year:04d}", lang))]


def render(
    quarter: Quarter,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    lang: str | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> list[ReportFiles]:
    """A quarter's documents: its report and, for a tariff quarter, its year's Informe (what the DAG
    writes after a quarter's publish, as of the snapshot it published)."""
    quarter = Quarter.of(quarter)
    kw = {"snapshot": snapshot, "as_of": as_of, "lang": lang, "warehouse": warehouse, "lake_root": lake_root}
    written = render_quarter(quarter, **kw)
    year = tariff_year(quarter.label)
    if year is not None:
        written += render_year(year, **kw)
    return written
