"""Metering's warehouse rows: the computed month shaped into the rows of its tables.

Keys (`k`, see keys.py) become point_id, participant, channel and interval_end here, and nowhere
else: `vee_findings`, `meter_hourly`, the `meter_readings` file of the run's new readings, the
`meter_readings_superseded` rows, the versions of `meter_estimates`, `quarantine` rows (with their
file and line) and the per-file, per-month rows of the ledger (`landed_files`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.metering import keys, ledger, registers, stored
from pipelines.metering.keys import CHANNELS
from pipelines.metering.landing import COLUMNS, EXCERPT_CHARS
from pipelines.metering.readings import CATEGORY, Staged, reasons
from pipelines.periods import Month
from pipelines.warehouse import Write

ESTIMATES = "meter_estimates"


def findings(
    month: Month, points: pl.DataFrame, interval_rules: pl.DataFrame, gap_rules: pl.DataFrame, conflicts: pl.DataFrame
) -> pl.DataFrame:
    """`vee_findings` rows: the interval rules' findings, the gaps (detail: through their last interval)
    and the duplicate conflicts."""
    start = month.start
    conflict_rows = conflicts.select(
        "k", rule=pl.lit("duplicate_conflict"), detail="detail", value=pl.lit(None, pl.Float64)
    )
    gap_rows = gap_rules.with_columns(
        detail=pl.format(
            "{} through {}", "detail", keys.interval_end(start, pl.col("last_i")).dt.strftime("%Y-%m-%d %H:%M")
        )
    ).drop("last_i")
    allf = pl.concat([interval_rules, gap_rows, conflict_rows])
    series = keys.series()
    return (
        allf.with_columns(point_idx=keys.point_index(series), ch=keys.channel_index(series))
        .join(points.select("point_idx", "point_id", "participant"), on="point_idx")
        .select(
            "point_id",
            "participant",
            month=pl.lit(month.label),
            interval_end=keys.interval_end(start, keys.interval_index()),
            channel=keys.channel_name(pl.col("ch")),
            rule="rule",
            detail="detail",
            value="value",
        )
        .sort("point_id", "channel", "interval_end", "rule")
    )


def hourly(hours: pl.DataFrame, points: pl.DataFrame, month: Month) -> pl.DataFrame:
    """`meter_hourly` rows of the month's hourly values (aggregates.hourly)."""
    series = keys.hour_series()
    return hours.select(
        point_id=lookup(point_label(points), keys.point_index(series)),
        participant=lookup(point_label(points, "participant"), keys.point_index(series)),
        month=pl.lit(month.label, pl.Enum([month.label])),
        hour=pl.lit(month.start) + pl.duration(hours=keys.hour_of_month()),
        channel=lookup(pl.Series(list(CHANNELS)), keys.channel_index(series)),
        value=pl.col("value"),
        quality=pl.col("quality"),
        real_intervals=pl.col("real").cast(pl.Int32),
        estimated_intervals=pl.col("est").cast(pl.Int32),
    )


def _series_columns(points: pl.DataFrame, month: Month) -> dict[str, pl.Expr]:
    """point_id, participant, channel and interval_end of a key `k` (see metering/keys.py)."""
    start = month.start
    point = keys.point_index(keys.series())
    return {
        "participant": lookup(point_label(points, "participant"), point).cast(pl.String),
        "point_id": lookup(point_label(points), point).cast(pl.String),
        "channel": lookup(pl.Series(list(CHANNELS)), keys.channel_index(keys.series())).cast(pl.String),
        "interval_end": keys.interval_end(start, keys.interval_index()),
    }


def stored_keys(replaced: pl.DataFrame, points: pl.DataFrame, month: Month) -> pl.DataFrame:
    """(point_id, channel, interval_end) of the stored readings this run replaced: deleted from the month."""
    columns = _series_columns(points, month)
    return replaced.select(**{c: columns[c] for c in ("point_id", "channel", "interval_end")})


def superseded(
    src: stored.Stored,
    run_id: str,
    month: Month,
    merged: stored.Merged,
    points: pl.DataFrame,
    plan: ledger.Plan,
    at: datetime,
) -> pl.DataFrame:
    """`meter_readings_superseded` rows: the stored readings this run replaced (with the file and run
    that had brought them) and the rows of this run that a later file of this run replaced."""
    labels = pl.Series(plan.labels, dtype=pl.String)
    columns = _series_columns(points, month)
    by = {
        "superseded_by_file": pl.lit(labels).gather(pl.col("by_file")),
        "superseded_by_run": pl.lit(run_id),
        "superseded_at": pl.lit(at, pl.Datetime("us")),
    }
    lost = merged.lost.select(
        month=pl.lit(month.label),
        **columns,
        value="v",
        source_file=pl.lit(labels).gather(pl.col("file")),
        source_run=pl.lit(run_id),
        **by,
    )
    frames = [lost]
    if merged.replaced.height:
        keyed = merged.replaced.with_columns(**columns)
        origin = stored.provenance(src, month, keyed.select("point_id", "channel", "interval_end"))
        frames.append(
            keyed.join(
                origin.select(
                    "point_id",
                    "channel",
                    "interval_end",
                    source_file=pl.col("source_file") if "source_file" in origin.columns else pl.lit(None, pl.String),
                    source_run=pl.col("run_id") if "run_id" in origin.columns else pl.lit(None, pl.String),
                ),
                on=["point_id", "channel", "interval_end"],
                how="left",
            ).select(
                month=pl.lit(month.label),
                participant="participant",
                point_id="point_id",
                channel="channel",
                interval_end="interval_end",
                value="v",
                source_file="source_file",
                source_run="source_run",
                **by,
            )
        )
    return pl.concat([f.cast(frames[0].schema) for f in frames]).sort("point_id", "channel", "interval_end")


def readings_file(
    appended: pl.DataFrame, points: pl.DataFrame, month: Month, plan: ledger.Plan, run_id: str, path: Path
) -> Path:
    """The run's new readings of the month as `meter_readings` rows, in one local Parquet file that the
    publish adopts as a data file of the month (a whole month is 24 million rows: written once, by polars)."""
    start = month.start
    point = keys.point_index(keys.series())
    # constant strings as one-value Enums: written as a dictionary of one string, not 24 million copies
    appended.lazy().select(
        month=pl.lit(month.label, pl.Enum([month.label])),
        participant=lookup(point_label(points, "participant"), point),
        point_id=lookup(point_label(points), point),
        channel=lookup(pl.Series(list(CHANNELS)), keys.channel_index(keys.series())),
        interval_end=keys.interval_end(start, keys.interval_index()),
        value=pl.col("v"),
        source_file=lookup(pl.Series(plan.labels, dtype=pl.String), pl.col("file")),
        run_id=pl.lit(run_id, pl.Enum([run_id])),
    ).sink_parquet(path, compression="zstd", compression_level=1)  # the lake's file: zstd, fast level
    return path


def estimate_versions(
    src: stored.Stored,
    run_id: str,
    month: Month,
    points: pl.DataFrame,
    estimated: pl.DataFrame,
    readings: pl.DataFrame,
) -> list[Write]:
    """`meter_estimates` keeps every version of every estimate: a new estimate (value, method, run, time)
    is added; the standing estimate it replaces, or that a real reading made unneeded, is kept with
    `superseded_by_run`, `superseded_at` and the reason. An unchanged estimate stays as it is."""
    columns = _series_columns(points, month)
    now = datetime.now()
    standing = stored.standing_estimates(src, month, points, ESTIMATES)
    new = estimated.select("k", "v", "method")
    if standing.height:
        joined = standing.join(new, on="k", how="left", suffix="_new")
        unchanged = joined.filter((pl.col("v") == pl.col("v_new")) & (pl.col("method") == pl.col("method_new")))
        gone = joined.join(unchanged.select("k"), on="k", how="anti").join(
            readings.select("k", real=pl.lit(True)), on="k", how="left"
        )
        new = new.join(unchanged.select("k"), on="k", how="anti")
    else:
        gone = pl.DataFrame(schema={"k": pl.Int64})
    rows = new.select(
        month=pl.lit(month.label),
        **columns,
        value="v",
        method="method",
        run_id=pl.lit(run_id),
        estimated_at=pl.lit(now, pl.Datetime("us")),
        superseded_by_run=pl.lit(None, pl.String),
        superseded_at=pl.lit(None, pl.Datetime("us")),
        superseded_reason=pl.lit(None, pl.String),
    )
    writes = [Write(ESTIMATES, rows, {"month": month.label}, append=True)]
    if gone.height:
        old = gone.select(
            month=pl.lit(month.label),
            **columns,
            value="v",
            method="method",
            run_id="run_id",
            estimated_at="estimated_at",
            superseded_by_run=pl.lit(run_id),
            superseded_at=pl.lit(now, pl.Datetime("us")),
            superseded_reason=pl.when(pl.col("real").fill_null(False))
            .then(pl.lit("a real reading arrived"))
            .when(pl.col("v_new").is_not_null())
            .then(pl.format("re-estimated ({} {})", "method_new", "v_new"))
            .otherwise(pl.lit("no longer estimated")),
        ).cast(rows.schema)
        # the standing versions are rewritten with who superseded them, when and why
        writes.append(
            Write(
                ESTIMATES,
                old,
                {"month": month.label},
                delete_keys=old.select("point_id", "channel", "interval_end", "run_id"),
            )
        )
    return writes


def quarantine_schema() -> pl.DataFrame:
    raw = {f"raw_{c}": pl.String for c in COLUMNS}
    return pl.DataFrame(
        schema={"month": pl.String, "source_file": pl.String, "line": pl.Int64, **raw, "reason": pl.String}
    )


def quarantine(staged: Staged, cats: pl.DataFrame, month: Month, plan: ledger.Plan) -> pl.DataFrame:
    """The month's quarantined rows with their source file and line, plus one row per unreadable file."""
    # rel: the month of the file's earliest valid interval, counted from this one
    file_month = (
        cats.filter(pl.col("cat").is_in([CATEGORY["good"], CATEGORY["quarantine"], CATEGORY["other_month"]]))
        .group_by("file")
        .agg(file_rel=pl.col("rel_min").min())
    )
    rows = (
        staged.scan()
        .filter(pl.col("cat").is_in([CATEGORY["quarantine"], CATEGORY["unplaced"]]))
        .collect()
        .join(file_month, on="file", how="left")
        .filter((pl.col("cat") == CATEGORY["quarantine"]) | pl.col("file_rel").is_null() | (pl.col("file_rel") == 0))
        .with_columns(
            reason=pl.when((pl.col("cat") == CATEGORY["unplaced"]) & pl.col("file_rel").is_null())
            .then(reasons() + pl.lit(" (no valid interval_end in the file)"))
            .otherwise(reasons())
        )
    )
    # line as a person finds it: CSV line (header = 1), or Parquet row (first = 1)
    fast = sorted(staged.fast_files & set(rows["file"].unique().to_list()))
    offsets = (
        staged.scan().filter(pl.col("file").is_in(fast)).group_by("file").agg(first_row=pl.col("row").min()).collect()
        if fast
        else pl.DataFrame(schema={"file": pl.UInt32, "first_row": pl.UInt32})
    )
    is_parquet = [p.suffix == ".parquet" for p in plan.files]
    labels = pl.Series(plan.labels, dtype=pl.String)
    rows = rows.join(offsets, on="file", how="left").with_columns(
        line=(
            pl.col("row").cast(pl.Int64)
            - pl.col("first_row").fill_null(0).cast(pl.Int64)
            + pl.when(pl.lit(pl.Series(is_parquet, dtype=pl.Boolean)).gather(pl.col("file"))).then(1).otherwise(2)
        ),
        source_file=pl.lit(labels).gather(pl.col("file")),
    )
    unreadable = pl.DataFrame(
        {
            "source_file": [plan.labels[i] for i in staged.unreadable],
            "reason": [f"file cannot be read: {why}" for why in staged.unreadable.values()],
        },
        schema={"source_file": pl.String, "reason": pl.String},
    )
    raw = [f"raw_{c}" for c in COLUMNS]
    # a raw value is kept as evidence, but a hostile line (no commas, 100 KB) is cut to an excerpt
    capped = [
        pl.when(pl.col(c).str.len_chars() > EXCERPT_CHARS)
        .then(pl.col(c).str.slice(0, EXCERPT_CHARS) + pl.lit("..."))
        .otherwise(pl.col(c))
        .alias(c)
        for c in raw
    ]
    return (
        pl.concat(
            [
                rows.select("source_file", "line", *capped, "reason"),
                unreadable.with_columns(
                    line=pl.lit(None, pl.Int64), **{c: pl.lit(None, pl.String) for c in raw}
                ).select("source_file", "line", *raw, "reason"),
            ]
        )
        .select(pl.lit(month.label).alias("month"), pl.all())
        .sort("source_file", "line", nulls_last=True)
    )


def register_quarantine(input_dir: Path, reads: pl.DataFrame | None, month: Month) -> tuple[pl.DataFrame, list[str]]:
    """The register reads that cannot be used, as `quarantine` rows (read_at in raw_interval_end), and
    the file's name: its rows are replaced by each run, which reads the whole (small) file again."""
    if reads is None:
        return quarantine_schema(), []
    name = registers.find_input(input_dir, registers.STEM).name
    bad = registers.quarantined(reads)
    return bad.select(
        month=pl.coalesce((pl.col("read_at") - pl.duration(minutes=1)).dt.strftime("%Y-%m"), pl.lit(month.label)),
        source_file=pl.lit(name),
        line="line",
        raw_device_id="raw_device_id",
        raw_interval_end="raw_read_at",
        raw_channel="raw_channel",
        raw_value="raw_value",
        reason="reason",
    ).cast(quarantine_schema().schema), [name]


def point_label(points: pl.DataFrame, column: str = "point_id") -> pl.Series:
    return points.sort("point_idx")[column]


def lookup(labels: pl.Series, index: pl.Expr) -> pl.Expr:
    """labels[index] as an Enum: a gather of small integers instead of copying strings per row."""
    return pl.lit(labels.cast(pl.Enum(labels.unique(maintain_order=True).to_list()))).gather(index)


def ledger_months(cats: pl.DataFrame, staged: Staged | None, month: Month, moved: list[int]) -> pl.DataFrame:
    """Per file read for the month (`landed_files`, before ledger.rows adds the file's columns): file,
    month, rows, good, first_interval, last_interval. `cats`: the staged rows counted by category and file."""
    start = month.start
    per_file = (
        cats.filter(pl.col("cat").is_in([CATEGORY["good"], CATEGORY["quarantine"]]) & ~pl.col("file").is_in(moved))
        .group_by("file")
        .agg(
            rows=pl.col("n").sum(),
            good=pl.col("n").filter(pl.col("cat") == CATEGORY["good"]).sum(),
            first_k=pl.col("first_k").min(),
            last_k=pl.col("last_k").max(),
        )
        .select(
            pl.col("file").cast(pl.Int64),
            month=pl.lit(month.label),
            rows="rows",
            good="good",
            first_interval=keys.interval_end(start, keys.interval_index(pl.col("first_k"))),
            last_interval=keys.interval_end(start, keys.interval_index(pl.col("last_k"))),
        )
    )
    if staged is None:
        return per_file
    # files read for this month that hold none of its rows still count as read
    read_here = pl.DataFrame(
        {"file": sorted(i for i in staged.indexes if i not in moved and i not in staged.unreadable)},
        schema={"file": pl.Int64},
    )
    per_file = per_file.join(read_here, on="file", how="full", coalesce=True).with_columns(
        month=pl.lit(month.label), rows=pl.col("rows").fill_null(0), good=pl.col("good").fill_null(0)
    )
    elsewhere = cats.filter(pl.col("cat") == CATEGORY["other_month"])["file"].cast(pl.Int64).to_list()
    return per_file.filter((pl.col("rows") > 0) | ~pl.col("file").is_in(elsewhere))
