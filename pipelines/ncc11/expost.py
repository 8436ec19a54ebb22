"""The ex-post of an NCC-11 quarter: the projection of each month against what was metered
(`mayorista expost --quarter YYYY-MM`, the `ncc11_expost` DAG). Contract: ncc11.md, "Ex-post".

    read      only the warehouse: the quarter's published NCC-11 tables (ncc11_energy_month, ncc11_energy),
              metering_points, meter_hourly, meter_completeness
    compute   sql/ncc11_expost.sql: per month, distributor and band, projected and metered energy,
              the deviation in MWh, % and USD (at the quarter's PMCE), and the metering's coverage
    publish   ncc11_expost, the quarter's rows replaced in ONE transaction (pipelines.run)

A month of the quarter whose metering has not been ingested yet (no meter_completeness rows) gives no
rows; the summary names it, and a later run (the DAG runs again when the month closes) adds it. A
quarter NCC-11 never published is an error: there is nothing to compare with."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines import bands, config, periods
from pipelines import run as runs
from pipelines import warehouse as store
from pipelines.errors import MayoristaError
from pipelines.warehouse import registry

logger = logging.getLogger(__name__)

PIPELINE = "expost"
TABLE = "ncc11_expost"
METERING = ("metering_points", "meter_hourly", "meter_completeness")
# the published table as the registry declares it: the SQL's result is cast to it, and an empty run publishes it
SCHEMA = registry.table(TABLE).schema


class QuarterNotPublished(MayoristaError):
    """The NCC-11 quarter has no published projection to compare with."""


@dataclass
class ExpostResult:
    quarter: str
    run_id: str
    snapshot_id: int | None = None
    rows: int = 0
    metered: list[str] = field(default_factory=list)  # months with rows
    not_metered: list[str] = field(default_factory=list)  # months whose metering is not ingested yet
    summary: str = ""


def _published_months(con: duckdb.DuckDBPyConnection, q: periods.Quarter, where: str) -> list[str]:
    """The quarter's months whose metering has been ingested; raises when NCC-11 never published it."""
    tables = store.tables(con)
    published = (
        "ncc11_energy" in tables
        and con.execute("SELECT count(*) FROM ncc11_energy WHERE quarter = ?", [q.label]).fetchone()[0]
    )
    if not published:
        raise QuarterNotPublished(
            f"NCC-11 quarter {q.label} has not been published in {where}: run "
            f"`mayorista ncc11 --quarter {q.label} --input DIR` first (the ex-post compares its projection with metering)"
        )
    by_month = (
        "ncc11_energy_month" in tables
        and con.execute("SELECT count(*) FROM ncc11_energy_month WHERE quarter = ?", [q.label]).fetchone()[0]
    )
    if not by_month:
        raise QuarterNotPublished(
            f"NCC-11 quarter {q.label} was published before its projection per month (ncc11_energy_month) "
            f"existed: re-run `mayorista ncc11 --quarter {q.label} --input DIR`, then the ex-post"
        )
    if not set(METERING) <= tables:
        return []
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT month::VARCHAR FROM meter_completeness WHERE month::VARCHAR IN (SELECT unnest(?)) ORDER BY 1",
            [q.month_labels],
        ).fetchall()
    ]


def compute(con: duckdb.DuckDBPyConnection, q: periods.Quarter, months: list[str]) -> pl.DataFrame:
    """ncc11_expost rows of `months` (metered months of the quarter) from the warehouse attached to
    `con`. Every hour is banded by pipelines.bands (the versioned calendar), not by SQL of its own."""
    if not months:
        return pl.DataFrame(schema=SCHEMA)
    hour_bands = bands.hour_bands(*q.bounds)
    con.register("hour_bands", hour_bands)
    try:
        sql = (config.sql_dir() / "ncc11_expost.sql").read_text(encoding="utf-8")
        table = con.execute(sql, {"quarter": q.label, "months": months}).pl()
    finally:
        con.unregister("hour_bands")
    return table.select(pl.col(name).cast(dtype) for name, dtype in SCHEMA.items())


def run(
    quarter: periods.Quarter | str,
    *,
    warehouse: str | Path | None = None,
    lake_root: str | Path | None = None,
    run_id: str | None = None,
) -> ExpostResult:
    """The quarter's ex-post, from the CLI and the DAG alike: read, compute, publish (one transaction)."""
    q = periods.Quarter.of(quarter)
    target = config.warehouse(warehouse)
    if not store.exists(target):  # nothing to read, and no reason to create an empty warehouse
        raise QuarterNotPublished(
            f"NCC-11 quarter {q.label} has not been published: there is no warehouse at {store.describe(target)}"
        )
    with runs.start(PIPELINE, q.label, run_id=run_id, warehouse=target, lake_root=lake_root) as r:
        with r.step("read"):
            con = store.connect(r.warehouse, read_only=True)
            try:
                # provenance: the warehouse snapshot the comparison was read from (its inputs are tables)
                read_at = store.current_snapshot(con)
                months = _published_months(con, q, store.describe(r.warehouse))
                with r.step("transform"):
                    table = compute(con, q, months)
            finally:
                con.close()
        r.manifest.counts.update({"read_snapshot": int(read_at), "months_metered": len(months), "rows": table.height})
        r.publish([registry.table(TABLE).replace(table, q.label)])
    result = ExpostResult(
        quarter=q.label,
        run_id=r.run_id,
        snapshot_id=r.snapshot_id,
        rows=table.height,
        metered=months,
        not_metered=[m for m in q.month_labels if m not in months],
    )
    result.summary = summary(result, table)
    logger.info("expost %s: %d rows, months metered %s", q.label, table.height, months)
    return result


def summary(result: ExpostResult, table: pl.DataFrame) -> str:
    """A few lines: the months compared and those not metered yet, and per distributor and month the
    projected and metered energy over the bands, the deviation and the coverage."""
    lines = [
        f"Ex-post of NCC-11 quarter {result.quarter} published (run {result.run_id}, snapshot {result.snapshot_id}): "
        f"{result.rows} rows in {TABLE}",
        f"  months metered: {', '.join(result.metered) or 'none'}",
    ]
    if result.not_metered:
        lines.append(
            f"  months not yet metered (no rows; run again once their metering is ingested): "
            f"{', '.join(result.not_metered)}"
        )
    if table.height:
        per_month = (
            table.group_by("distributor", "month", maintain_order=True)
            .agg(
                projected_mwh=pl.col("projected_mwh").sum().round(1),
                metered_mwh=pl.when(pl.col("points").first() > 0).then(pl.col("metered_mwh").sum().round(1)),
                deviation_mwh=pl.when(pl.col("points").first() > 0).then(pl.col("deviation_mwh").sum().round(1)),
                deviation_usd=pl.when(pl.col("points").first() > 0).then(pl.col("deviation_usd").sum().round(0)),
                points=pl.col("points").first(),
                completeness_pct=pl.col("completeness_pct").first().round(2),
                # the month's estimated share over the bands: sum(estimated) / sum(metered)
                estimated_pct=pl.when(pl.col("metered_mwh").sum().abs() >= 1e-9).then(
                    ((pl.col("estimated_pct") * pl.col("metered_mwh")).sum() / pl.col("metered_mwh").sum()).round(2)
                ),
            )
            .with_columns(
                deviation_pct=pl.when(pl.col("projected_mwh").abs() >= 1e-9).then(
                    (100 * pl.col("deviation_mwh") / pl.col("projected_mwh")).round(2)
                )
            )
            .select(
                "distributor",
                "month",
                "projected_mwh",
                "metered_mwh",
                "deviation_mwh",
                "deviation_pct",
                "deviation_usd",
                "points",
                "completeness_pct",
                "estimated_pct",
            )
        )
        with pl.Config(
            tbl_rows=200,
            tbl_cols=20,
            tbl_width_chars=200,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
            thousands_separator=",",
        ):
            lines.append(str(per_month))
        unmetered = sorted(set(table.filter(pl.col("points") == 0)["distributor"]))
        if unmetered:
            lines.append(f"  distributors without consumption metering points (metered NULL): {', '.join(unmetered)}")
    lines.append(f"  query it: mayorista sql \"FROM {TABLE} WHERE quarter = '{result.quarter}'\"")
    return "\n".join(lines)


def quarters_holding(months: list[str], warehouse: str | Path | None = None) -> list[str]:
    """The published NCC-11 quarters that hold any of `months` (what a closed metering month
    re-runs); a month no published quarter holds is logged and left alone: there is nothing to compare."""
    target = config.warehouse(warehouse)
    wanted = {periods.Month.parse(m).label for m in months}
    if not wanted or not store.exists(target):
        return []
    con = store.connect(target, read_only=True)
    try:
        published = (
            [r[0] for r in con.execute("SELECT DISTINCT quarter FROM ncc11_energy ORDER BY 1").fetchall()]
            if "ncc11_energy" in store.tables(con)
            else []
        )
    finally:
        con.close()
    holding = sorted(q for q in published if wanted & set(periods.Quarter.parse(q).month_labels))
    covered = {m for q in holding for m in periods.Quarter.parse(q).month_labels}
    for month in sorted(wanted - covered):
        logger.info("expost: no published NCC-11 quarter holds the month %s; nothing to compare", month)
    return holding
