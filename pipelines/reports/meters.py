"""The metering month report, from the published meter_completeness, meter_hourly and vee_findings
(and metering_points for the days each point was active) as of one snapshot:

    mayorista report meters --month YYYY-MM [--as-of RUN_ID]

completeness as a heatmap (points by day), VEE findings by rule, the least complete points, and the
estimated intervals. File: `<lake>/reports/meters/month=M/meters-M.{html,pdf}`.

The meters DAG calls `render(month, warehouse, lake_root)` after its publish."""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta

import polars as pl

from pipelines import config, periods
from pipelines.metering.keys import INTERVALS_PER_DAY, N_CHANNELS
from pipelines.reports import charts
from pipelines.reports.document import MISSING, ReportFiles, as_of_folder, render_html, write
from pipelines.reports.source import Source, open_source

logger = logging.getLogger(__name__)

HEATMAP_ROWS = 60  # the least complete points; the others are 100 % every day (said under the chart)
LISTED = 25


def _days(month: str) -> list[date]:
    start, end = periods.month_bounds(month)
    return [start.date() + timedelta(days=k) for k in range((end - start).days)]


def daily_completeness(src: Source, month: str) -> pl.DataFrame:
    """(point_id, day, pct): real intervals received that day over the 96 x 4 channels expected.

    From meter_hourly's real interval counts (estimated intervals never count); days a point was
    not active (metering_points validity) are NULL, not 0."""
    if not src.has("meter_hourly"):
        return pl.DataFrame(schema={"point_id": pl.String, "day": pl.Date, "pct": pl.Float64})
    columns = set(src.frame("SELECT * FROM {h} LIMIT 0", h="meter_hourly").columns)
    # real intervals per hour: the published count, else 4 for an hour of quality 'complete'
    real = "real_intervals" if "real_intervals" in columns else "CASE WHEN quality = 'complete' THEN 4 ELSE 0 END"
    received = src.frame(
        f"SELECT point_id, CAST(hour AS DATE) AS day, sum({real})::BIGINT AS n FROM {{h}} WHERE month = ? GROUP BY ALL",
        [month],
        h="meter_hourly",
    )
    points = (
        src.frame("SELECT DISTINCT point_id FROM {c} WHERE month = ?", [month], c="meter_completeness")
        if src.has("meter_completeness")
        else received.select("point_id").unique()
    )
    grid = points.join(pl.DataFrame({"day": _days(month)}), how="cross")
    if src.has("metering_points"):
        validity = src.frame(
            "SELECT point_id, min(valid_from) AS valid_from, max(coalesce(valid_to, DATE '9999-12-31')) AS valid_to "
            "FROM {p} GROUP BY point_id",
            p="metering_points",
        )
        grid = grid.join(validity, on="point_id", how="left").with_columns(
            active=pl.col("valid_from").is_null()
            | pl.col("day").is_between(pl.col("valid_from").cast(pl.Date), pl.col("valid_to").cast(pl.Date))
        )
    else:
        grid = grid.with_columns(active=pl.lit(True))
    return grid.join(received, on=["point_id", "day"], how="left").select(
        "point_id",
        "day",
        pct=pl.when(pl.col("active")).then(100.0 * pl.col("n").fill_null(0) / (INTERVALS_PER_DAY * N_CHANNELS)),
    )


def month_html(src: Source, month: str) -> str:
    periods.parse_month(month)
    has = {t: src.has(t) for t in ("meter_completeness", "meter_hourly", "vee_findings")}
    completeness = (
        src.frame("SELECT * FROM {c} WHERE month = ? ORDER BY point_id, channel", [month], c="meter_completeness")
        if has["meter_completeness"]
        else pl.DataFrame()
    )
    findings = (
        src.frame("SELECT * FROM {v} WHERE month = ?", [month], v="vee_findings")
        if has["vee_findings"]
        else pl.DataFrame()
    )
    estimated = (
        src.frame(
            "SELECT point_id, channel, count(*) AS hours, "
            + (
                "sum(estimated_intervals)::BIGINT"
                if has["meter_hourly"]
                and "estimated_intervals" in src.frame("SELECT * FROM {h} LIMIT 0", h="meter_hourly").columns
                else "NULL::BIGINT"
            )
            + " AS intervals, min(hour) AS first_hour, max(hour) AS last_hour FROM {h} "
            "WHERE month = ? AND quality = 'estimated' GROUP BY ALL ORDER BY point_id, channel",
            [month],
            h="meter_hourly",
        )
        if has["meter_hourly"]
        else pl.DataFrame()
    )
    figures, least, by_rule, kpis = [], [], [], {}
    if completeness.height:
        per_point = (
            completeness.group_by("point_id")
            .agg(
                participant=pl.col("participant").first()
                if "participant" in completeness.columns
                else pl.lit(None, pl.String),
                expected=pl.col("expected_intervals").sum(),
                received=pl.col("received_intervals").sum(),
                worst_pct=pl.col("completeness_pct").min(),
                worst_channel=pl.col("channel").sort_by("completeness_pct").first(),
            )
            .with_columns(pct=pl.when(pl.col("expected") > 0).then(100.0 * pl.col("received") / pl.col("expected")))
            .sort("pct", "point_id", nulls_last=True)
        )
        expected, received = per_point["expected"].sum(), per_point["received"].sum()
        kpis = {
            "points": per_point.height,
            "complete": int((per_point["worst_pct"] >= 100).sum()),
            "pct": 100.0 * received / expected if expected else None,
        }
        least = per_point.filter(pl.col("worst_pct") < 100).head(LISTED).to_dicts()
        daily = daily_completeness(src, month)
        shown = per_point.head(HEATMAP_ROWS)["point_id"].to_list()
        wide = {
            p: {d: v for d, v in zip(g["day"], g["pct"])}
            for (p,), g in daily.filter(pl.col("point_id").is_in(shown)).group_by("point_id")
        }
        days = _days(month)
        figures.append(
            (
                charts.heatmap(
                    shown,
                    [str(d.day) for d in days],
                    [[wide.get(p, {}).get(d) for d in days] for p in shown],
                    title=f"Completeness by point and day, {month}",
                    label="% of 15-min intervals (4 channels)",
                ),
                "Real readings received per day over 96 intervals × 4 channels; grey: the point was not active. "
                + (
                    f"The {len(shown)} least complete of {per_point.height} points; the other {per_point.height - len(shown)} "
                    "are shown in the table below only if below 100 %."
                    if per_point.height > len(shown)
                    else "All points."
                ),
            )
        )
    if findings.height:
        by_rule = (
            findings.group_by("rule")
            .agg(findings=pl.len(), points=pl.col("point_id").n_unique(), example=pl.col("detail").first())
            .sort("findings", "rule", descending=[True, False])
            .to_dicts()
        )
        figures.append(
            (
                charts.bars(
                    [r["rule"] for r in by_rule],
                    [r["findings"] for r in by_rule],
                    title="VEE findings by rule",
                    xlabel="findings",
                ),
                "Validation, estimation and editing findings of the month (vee_findings), by rule.",
            )
        )
    run = src.run_row("meters", month)
    checks = src.checks(run["run_id"]).to_dicts() if run else []
    return render_html(
        "meters.html.j2",
        title=f"Commercial metering, {month}",
        kicker="SMEC · NCC-14 · metering month report",
        subtitle=f"{kpis.get('points', 0)} metering point(s) · warehouse snapshot {src.snapshot_id}",
        month=month,
        kpis=kpis,
        least=least,
        by_rule=by_rule,
        estimated=estimated.to_dicts() if estimated.height else [],
        findings=findings.height,
        figures=figures,
        run=run,
        checks=checks,
        snapshot_id=src.snapshot_id,
        as_of_run=src.as_of_run,
        missing=MISSING,
        empty=not completeness.height,
    )


def render(
    month: str,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
    as_of: str | None = None,
    *,
    snapshot_id: int | None = None,
) -> ReportFiles:
    """Write the month's metering report (HTML and PDF) and return where; `as_of` a run id renders
    that run's snapshot into its own folder; `snapshot_id` pins the snapshot a run just published."""
    periods.parse_month(month)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot_id) as src:
        html = month_html(src, month)
    folder = as_of_folder(config.lake_root(lake_root), "meters", as_of) / f"month={month}"
    return write(html, folder / f"meters-{month}")
