"""The metering month report, from the published meter_completeness, meter_hourly and vee_findings
(and metering_points for the days each point was active) as of one snapshot:

    mayorista report meters --month YYYY-MM [--as-of RUN_ID] [--lang en]

completeness as a heatmap (points by day), VEE findings by rule, the least complete points, the
estimated intervals, and the readings files that made the month. File:
`<lake>/reports/meters/month=M/meters-M.{html,pdf}` (`meters-M.en.*` in English).

The meters DAG and the CLI call the same entry, `render(Month, snapshot=..., as_of=..., lang=...)`."""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta

import polars as pl

from pipelines import config, periods
from pipelines.errors import MayoristaError
from pipelines.metering.keys import INTERVALS_PER_DAY, N_CHANNELS
from pipelines.periods import Month
from pipelines.reports import charts
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
from pipelines.reports.fmt import iso
from pipelines.reports.fmt import num as fmt_num
from pipelines.reports.i18n import Words, words
from pipelines.reports.source import Source, open_source

logger = logging.getLogger(__name__)

HEATMAP_ROWS = 60  # the least complete points; the others are 100 % every day (said under the chart)
LISTED = 25
# the unit of each channel's 15-minute values (for the VEE examples, which quote values)
UNITS = {"kwh_del": "kWh", "kwh_rec": "kWh", "kvarh_del": "kvarh", "kvarh_rec": "kvarh"}


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


def landed(src: Source, month: str) -> list[dict]:
    """Every readings file that made the month, over all its runs (a re-run with no new file still
    lists the files read before): the ledger `landed_files`, with size and SHA-256."""
    if not src.has("landed_files"):
        return []
    return src.frame(
        "SELECT path AS file, any_value(size_bytes) AS bytes, any_value(sha256) AS sha256 FROM {f} "
        "WHERE month = ? AND status = 'ingested' GROUP BY path ORDER BY path",
        [month],
        f="landed_files",
    ).to_dicts()


def _example(t: Words, row: dict) -> str:
    """A VEE finding as an example: point, interval, channel with its unit, and the finding's detail."""
    channel = row.get("channel")
    unit = UNITS.get(channel or "", "")
    stored = row.get("detail") or ""
    key = f"vee_example.{row.get('rule')}"
    # a rule the catalogue does not know yet (a new VEE rule) shows its stored detail rather than nothing
    detail = t(key, value=fmt_num(row.get("value"), 2)) if t.has(key) else stored
    return t(
        "meters.example_text",
        point=row.get("point_id"),
        at=iso(row.get("interval_end")),
        channel=f"{channel} [{unit}]" if unit else (channel or MISSING),
        detail=detail,
    )


def month_html(src: Source, month: str, lang: str | None = None) -> str:
    periods.parse_month(month)
    t = words(lang)
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
    figures, least, by_rule = [], [], []
    kpis: dict = {"points": 0, "complete": 0, "pct": None}
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
                    title=t("meters.heatmap_title", month=month),
                    label=t("meters.heatmap_label"),
                ),
                t("meters.heatmap_caption")
                + " "
                + (
                    t(
                        "meters.heatmap_some",
                        shown=len(shown),
                        total=per_point.height,
                        rest=per_point.height - len(shown),
                    )
                    if per_point.height > len(shown)
                    else t("meters.heatmap_all")
                ),
            )
        )
    if findings.height:
        by_rule = (
            findings.group_by("rule")
            .agg(findings=pl.len(), points=pl.col("point_id").n_unique(), example=pl.struct(pl.all()).first())
            .sort("findings", "rule", descending=[True, False])
            .to_dicts()
        )
        for r in by_rule:
            r["example"] = _example(t, {**r["example"], "rule": r["rule"]})  # the group's key is not in its rows
        figures.append(
            (
                charts.bars(
                    [r["rule"] for r in by_rule],
                    [r["findings"] for r in by_rule],
                    title=t("meters.findings_chart"),
                    xlabel=t("meters.findings"),
                ),
                t("meters.findings_caption"),
            )
        )
    run = src.run_row("meters", month)
    checks = [{**c, "words": check_words(t, c)} for c in src.checks(run["run_id"]).to_dicts()] if run else []
    return render_html(
        "meters.html.j2",
        lang=t.lang,
        title=t("meters.title", month=month),
        kicker=t("meters.kicker"),
        subtitle=subtitle(t, t("meters.subtitle", points=fmt_num(kpis["points"])), run, src.snapshot_id),
        month=month,
        landed=landed(src, month),
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
    )


def render(
    month: Month,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    lang: str | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> list[ReportFiles]:
    """Write the month's metering report (HTML and PDF) as of `snapshot` (what a run just published),
    or the snapshot run `as_of` published (into its own folder), or the current one. A month never
    published is a `MayoristaError` (exit 2), not an empty document."""
    month = Month.of(month)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot) as src:
        if src.run_row("meters", month.label) is None:
            raise MayoristaError(
                f"the metering month {month} has no published run at warehouse snapshot {src.snapshot_id}: "
                f"nothing to report (ingest it first: mayorista meters ingest --month {month} --input DIR)"
            )
        html = month_html(src, month.label, lang)
    folder = as_of_folder(config.lake_root(lake_root), "meters", as_of) / f"month={month}"
    return [write(html, target(folder, f"meters-{month}", lang))]
