"""The ex-post section of the NCC-11 reports (the quarter's report and the annual Informe): per
distributor, the projected and the metered energy of each month and band (a chart and a table), the
deviation in MWh, % and USD (at the quarter's PMCE), and the metering's coverage (completeness, share
estimated), with months not yet metered and months below 100 % completeness clearly marked.

Read from `ncc11_expost` (pipelines.ncc11.expost) and `ncc11_energy_month` as of the report's
snapshot; rendered by the macro in templates/expost.html.j2. Its words are the catalogue's [expost]
table (strings/es.toml, strings/en.toml), in the language of the report it is part of."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from pipelines import periods
from pipelines.reports import charts
from pipelines.reports.i18n import Words
from pipelines.reports.source import Source

logger = logging.getLogger(__name__)

# a band's projection in a light tint of the band's colour, its metered energy in the colour itself
LIGHT = {"punta": "#f2bf99", "intermedia": "#f5d899", "valle": "#99c7e0"}
BANDS = ("punta", "intermedia", "valle")


def _table(src: Source, name: str, quarter: str) -> pl.DataFrame:
    if not src.has(name):
        return pl.DataFrame()
    return src.frame("SELECT * FROM {t} WHERE quarter = ?", [quarter], t=name)


def _month_total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A month over its bands: sums, the deviation % of the sums, the estimated share of the sum."""
    projected = sum(r["projected_mwh"] or 0 for r in rows)
    metered = None if any(r["metered_mwh"] is None for r in rows) else sum(r["metered_mwh"] for r in rows)
    deviation = None if metered is None else metered - projected
    usd = [r["deviation_usd"] for r in rows]
    estimated = (
        sum((r["estimated_pct"] or 0) * (r["metered_mwh"] or 0) for r in rows) / metered
        if metered is not None and abs(metered) >= 1e-9
        else None
    )
    return {
        "projected_mwh": projected,
        "metered_mwh": metered,
        "deviation_mwh": deviation,
        "deviation_pct": 100 * deviation / projected if deviation is not None and abs(projected) >= 1e-9 else None,
        "deviation_usd": None if any(u is None for u in usd) else sum(usd),
        "points": rows[0]["points"],
        "completeness_pct": rows[0]["completeness_pct"],
        "estimated_pct": estimated,
    }


def quarter_view(t: Words, src: Source, quarter: str) -> dict[str, Any]:
    """The ex-post of `quarter` as the macro `expost.section` shows it, per distributor, in `t`'s language."""
    months = periods.quarter_months(quarter)
    rows = _table(src, "ncc11_expost", quarter)
    projection = _table(src, "ncc11_energy_month", quarter)
    ran = src.run_row("expost", quarter) is not None
    metered = sorted(set(rows["month"])) if rows.height else []
    view: dict[str, Any] = {
        "quarter": quarter,
        "t": t,
        "ran": ran,
        "metered": metered,
        "not_metered": [m for m in months if m not in metered],
        "dists": {},
    }
    names = sorted(
        {*(projection["distributor"] if projection.height else []), *(rows["distributor"] if rows.height else [])}
    )
    for name in names:
        by_month = []
        for month in months:
            band_rows = (
                rows.filter((pl.col("distributor") == name) & (pl.col("month") == month)).to_dicts()
                if rows.height
                else []
            )
            band_rows.sort(key=lambda r: BANDS.index(r["band"]))
            total = _month_total(band_rows) if band_rows else None
            by_month.append(
                {
                    "month": month,
                    "metered": bool(band_rows),
                    "rows": band_rows,
                    "total": total,
                    "below": bool(total and total["completeness_pct"] is not None and total["completeness_pct"] < 100),
                }
            )
        no_points = any(m["metered"] for m in by_month) and all(
            m["total"]["points"] == 0 for m in by_month if m["metered"]
        )
        view["dists"][name] = {
            "months": by_month,
            "no_points": no_points,
            "chart": _chart(t, name, months, projection, by_month) if ran else None,
        }
    return view


def _chart(t: Words, name: str, months: list[str], projection: pl.DataFrame, by_month: list[dict[str, Any]]) -> str:
    """Per month, each band's projected (light) and metered (dark) energy side by side; metered left
    out of a month not metered yet."""
    planned = projection.filter(pl.col("distributor") == name) if projection.height else projection
    series: dict[str, list[float | None]] = {}
    colors = {}
    for band in BANDS:
        word = t(f"expost.bands.{band}")
        projected_label = t("expost.series", band=word, what=t("expost.series_projected"))
        metered_label = t("expost.series", band=word, what=t("expost.series_metered"))
        series[projected_label], series[metered_label] = [], []
        colors[projected_label], colors[metered_label] = LIGHT[band], charts.BANDS[band]
        for month, m in zip(months, by_month):
            hit = planned.filter((pl.col("month") == month) & (pl.col("band") == band)) if planned.height else planned
            series[projected_label].append(hit["total_demand_mwh"][0] if hit.height else None)
            row = next((r for r in m["rows"] if r["band"] == band), None)
            series[metered_label].append(row["metered_mwh"] if row else None)
    return charts.grouped_bars(
        months, series, title=t("expost.chart_title", name=name), ylabel=t("expost.ylabel"), colors=colors
    )
