"""`mayorista meters ingest --month M`: one month of SMEC readings, end to end.

registry (GX) -> one streaming pass over every readings file (readings.stage) -> quarantine, duplicates
-> VEE findings and short-gap estimates -> completeness and hourly values -> GX on the month's
aggregates -> one warehouse transaction replacing the month in every table (pipelines.run).

Which rows are the month's: those whose interval (interval_end - 15 min) starts in it. Rows of other
months found in the same files are counted in the manifest as `other_month_rows` and left alone (their
own month's run ingests them). A row whose timestamp does not parse has no month of its own: it belongs
to the month of the earliest valid interval in its file (a file with none is reported by every run).

Every row read is accounted for: rows_read = month_rows + other_month_rows, and month_rows =
ingested + duplicates_dropped + quarantined; the run stops if that ever fails to hold."""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines import quality, run as runs
from pipelines.errors import InputError, MayoristaError
from pipelines.warehouse import Write
from pipelines.manifest import Manifest, file_sha256
from pipelines.metering import aggregates, checks, registry as reg, vee
from pipelines.metering.readings import CATEGORY, CHANNELS, COLUMNS, KEY_SPAN, Staged, find_files, reasons, stage
from pipelines.periods import month_bounds, parse_month

logger = logging.getLogger(__name__)

PIPELINE = "meters"
WAREHOUSE_TABLES = ("meter_readings", "meter_completeness", "meter_hourly", "vee_findings", "quarantine", "metering_points")


@dataclass
class IngestResult:
    month: str
    run_id: str
    summary: str
    counts: dict[str, int]
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why
    validation: list = field(default_factory=list)
    snapshot_id: int | None = None


def ingest_month(month: str, input_dir: Path, *, warehouse: str | Path | None = None, lake_root: str | Path | None = None,
                 run_id: str | None = None) -> IngestResult:
    parse_month(month)
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} does not exist")
    with runs.start(PIPELINE, month, run_id=run_id, warehouse=warehouse, lake_root=lake_root) as r:
        gx_ready = quality.warm("metering_points", "metering_month")
        # file hashes for the manifest, computed alongside the scan (hashlib releases the GIL)
        hashing = ThreadPoolExecutor(max_workers=1)
        hashes = hashing.submit(lambda: {p: file_sha256(p) for p in find_files(input_dir)})
        hashing.shutdown(wait=False)
        thresholds = vee.load_thresholds()

        with r.step("registry"):
            registry = reg.load_registry(input_dir)
            if reg.has_problems(registry):  # fail before reading millions of rows; GX writes the report
                r.validation = reg.validate(registry)
                quality.raise_on_errors(r.validation)
            r.manifest.add_input(input_dir / _registry_name(input_dir), registry.height)
            points = reg.month_points(registry, month)
            device_days = reg.device_days(registry, month, points)
            ranges = reg.point_day_ranges(registry, month, points)
        result = _run(r, input_dir, registry, points, device_days, ranges, thresholds, gx_ready, hashes)
    if result.unreadable:
        listing = "\n".join(f"  {name}: {why}" for name, why in result.unreadable.items())
        raise InputError(f"{len(result.unreadable)} readings file(s) could not be read; the other files were ingested "
                         f"and published, these are also in `quarantine`:\n{listing}\n\n{result.summary}")
    return result


def _registry_name(input_dir: Path) -> str:
    return "metering_points.parquet" if (input_dir / "metering_points.parquet").exists() else "metering_points.csv"


def _run(r: runs.Run, input_dir: Path, registry: pl.DataFrame, points: pl.DataFrame, device_days: pl.DataFrame,
         ranges: pl.DataFrame, thresholds: vee.Thresholds, gx_ready: threading.Thread, hashes: Future) -> IngestResult:
    month, manifest, scratch = r.period, r.manifest, r.scratch
    with manifest.step("read_readings"):
        staged = stage(month, input_dir, device_days, registry["device_id"].unique().to_list(), scratch)
        cats = staged.scan().group_by("cat", "file").agg(n=pl.len(), rel_min=pl.col("rel").min()).collect()
    rows_per_file = dict(cats.filter(pl.col("cat") != CATEGORY["blank"]).group_by("file").agg(pl.col("n").sum()).iter_rows())
    digests = hashes.result()
    for index, path in enumerate(staged.files):
        manifest.inputs.append({"file": _label(path), "sha256": digests.get(path) or file_sha256(path),
                                "bytes": path.stat().st_size, "rows": int(rows_per_file.get(index, 0)),
                                **({"unreadable": staged.unreadable[index]} if index in staged.unreadable else {})})

    with manifest.step("quarantine"):
        quarantined = _quarantine(staged, cats, month)

    with manifest.step("deduplicate"):
        rows = staged.scan().filter(pl.col("cat") == CATEGORY["good"]).select("k", "v", "file", "row").collect()
        good_rows = rows.height
        readings, conflicts, duplicates = vee.deduplicate(rows)
        del rows

    with manifest.step("vee"):
        maximum = vee.series_max(points["point_id"].to_list(), thresholds)
        stats = vee.series_stats(readings)
        interval_rules = vee.interval_findings(readings, maximum, thresholds)
        gap_rules, estimated = vee.gaps(readings, ranges, thresholds, stats)
        findings = _findings(month, points, interval_rules, gap_rules, conflicts)

    with manifest.step("aggregates"):
        completeness = aggregates.completeness(stats, points, month)
        hourly = _label_hours(aggregates.hourly(readings, estimated), points, month)

    counts = _counts(cats, month, good_rows, readings.height, duplicates, quarantined, estimated.height, findings)
    manifest.counts.update(counts)

    with manifest.step("validate"):
        gx_ready.join()
        results = reg.validate(registry) + checks.month_checks(stats, completeness, hourly, points, month)

    with manifest.step("stage_readings"):
        readings_file = _write_readings(readings, points, month, scratch / "meter_readings.parquet")
        manifest.outputs["meter_readings"] = readings.height

    unreadable = {staged.files[i].relative_to(input_dir).as_posix(): why for i, why in staged.unreadable.items()}
    # an error-level check stops the run before anything is published
    r.validation = results
    quality.raise_on_errors(results)
    manifest.counts["unreadable_files"] = len(unreadable)

    by_month = lambda table, rows: Write(table, rows, {"month": month}, ("month",))  # noqa: E731
    r.publish([
        Write("meter_readings", str(readings_file), {"month": month}, ("month",), adopt=True),
        Write("meter_hourly", hourly, {"month": month}, ("month",), adopt=True),
        by_month("meter_completeness", completeness),
        by_month("vee_findings", findings),
        by_month("quarantine", quarantined),
        Write("metering_points", registry.with_columns(source_file=pl.lit(_registry_name(input_dir))),
              {"source_file": _registry_name(input_dir)}),
    ])
    result = IngestResult(month, r.run_id, "", counts, unreadable, results, r.snapshot_id)
    result.summary = summarize(result, completeness, findings, manifest)
    return result


def _quarantine(staged: Staged, cats: pl.DataFrame, month: str) -> pl.DataFrame:
    """The month's quarantined rows with their source file and line, plus one row per unreadable file."""
    # rel: where the file's earliest valid interval lies relative to the month (-1 before, 0 in, 1 after)
    file_month = (
        cats.filter(pl.col("cat").is_in([CATEGORY["good"], CATEGORY["quarantine"], CATEGORY["other_month"]]))
        .group_by("file").agg(file_rel=pl.col("rel_min").min())
    )
    rows = (
        staged.scan().filter(pl.col("cat").is_in([CATEGORY["quarantine"], CATEGORY["unplaced"]]))
        .collect()
        .join(file_month, on="file", how="left")
        .filter((pl.col("cat") == CATEGORY["quarantine"]) | pl.col("file_rel").is_null() | (pl.col("file_rel") == 0))
        .with_columns(reason=pl.when((pl.col("cat") == CATEGORY["unplaced"]) & pl.col("file_rel").is_null())
                      .then(reasons() + pl.lit(" (no valid interval_end in the file: reported by every month's run)"))
                      .otherwise(reasons()))
    )
    # line as a person finds it: CSV line (header = 1), or Parquet row (first = 1)
    fast = sorted(staged.fast_files & set(rows["file"].unique().to_list()))
    offsets = (
        staged.scan().filter(pl.col("file").is_in(fast)).group_by("file").agg(first_row=pl.col("row").min()).collect()
        if fast else pl.DataFrame(schema={"file": pl.UInt32, "first_row": pl.UInt32})
    )
    is_parquet = [p.suffix == ".parquet" for p in staged.files]
    labels = [_label(p) for p in staged.files]
    rows = rows.join(offsets, on="file", how="left").with_columns(
        line=(pl.col("row").cast(pl.Int64) - pl.col("first_row").fill_null(0).cast(pl.Int64)
              + pl.when(pl.lit(pl.Series(is_parquet)).gather(pl.col("file"))).then(1).otherwise(2)),
        source_file=pl.lit(pl.Series(labels)).gather(pl.col("file")),
    )
    unreadable = pl.DataFrame({
        "source_file": [labels[i] for i in staged.unreadable],
        "reason": [f"file cannot be read: {why}" for why in staged.unreadable.values()],
    }, schema={"source_file": pl.String, "reason": pl.String})
    raw = [f"raw_{c}" for c in COLUMNS]
    return pl.concat([
        rows.select("source_file", "line", *raw, "reason"),
        unreadable.with_columns(line=pl.lit(None, pl.Int64), **{c: pl.lit(None, pl.String) for c in raw})
        .select("source_file", "line", *raw, "reason"),
    ]).select(pl.lit(month).alias("month"), pl.all()).sort("source_file", "line", nulls_last=True)


def _label(path: Path) -> str:
    """A file's path from `readings/` on, as the participant named it."""
    parts = path.parts
    return "/".join(parts[len(parts) - 1 - parts[::-1].index("readings"):]) if "readings" in parts else path.name


def _point_label(points: pl.DataFrame, column: str = "point_id") -> pl.Series:
    return points.sort("point_idx")[column]


def _lookup(labels: pl.Series, index: pl.Expr) -> pl.Expr:
    """labels[index] as an Enum: a gather of small integers instead of copying strings per row."""
    return pl.lit(labels.cast(pl.Enum(labels.unique(maintain_order=True).to_list()))).gather(index)


def _findings(month: str, points: pl.DataFrame, interval_rules: pl.DataFrame, gap_rules: pl.DataFrame,
              conflicts: pl.DataFrame) -> pl.DataFrame:
    start, _ = month_bounds(month)
    conflict_rows = conflicts.select("k", rule=pl.lit("duplicate_conflict"), detail="detail", value=pl.lit(None, pl.Float64))
    gap_rows = gap_rules.with_columns(
        detail=pl.format("{} through {}", "detail",
                         (pl.lit(start) + pl.duration(minutes=15 * pl.col("last_i"))).dt.strftime("%Y-%m-%d %H:%M"))
    ).drop("last_i")
    allf = pl.concat([interval_rules, gap_rows, conflict_rows])
    series = pl.col("k") // KEY_SPAN
    return allf.with_columns(point_idx=series // len(CHANNELS), ch=series % len(CHANNELS)).join(
        points.select("point_idx", "point_id", "participant"), on="point_idx"
    ).select(
        "point_id", "participant", month=pl.lit(month),
        interval_end=pl.lit(start) + pl.duration(minutes=15 * (pl.col("k") % KEY_SPAN)),
        channel=pl.lit(pl.Series(list(CHANNELS))).gather(pl.col("ch")),
        rule="rule", detail="detail", value="value",
    ).sort("point_id", "channel", "interval_end", "rule")


def _label_hours(hours: pl.DataFrame, points: pl.DataFrame, month: str) -> pl.DataFrame:
    start, _ = month_bounds(month)
    series = pl.col("h") // 1024
    return hours.select(
        point_id=_lookup(_point_label(points), series // len(CHANNELS)),
        participant=_lookup(_point_label(points, "participant"), series // len(CHANNELS)),
        month=pl.lit(month, pl.Enum([month])),
        hour=pl.lit(start) + pl.duration(hours=pl.col("h") % 1024),
        channel=_lookup(pl.Series(list(CHANNELS)), series % len(CHANNELS)),
        value=pl.col("value"),
        quality=pl.col("quality"),
        real_intervals=pl.col("real").cast(pl.Int32),
        estimated_intervals=pl.col("est").cast(pl.Int32),
    )


def _write_readings(readings: pl.DataFrame, points: pl.DataFrame, month: str, path: Path) -> Path:
    """The month's unique real readings as `meter_readings` rows, in one local Parquet file that the
    publish adopts as the month's data file (24 million rows: written once, by polars)."""
    start, _ = month_bounds(month)
    point = pl.col("k") // KEY_SPAN // len(CHANNELS)
    readings.lazy().select(
        month=pl.lit(month),
        participant=_lookup(_point_label(points, "participant"), point),
        point_id=_lookup(_point_label(points), point),
        channel=_lookup(pl.Series(list(CHANNELS)), pl.col("k") // KEY_SPAN % len(CHANNELS)),
        interval_end=pl.lit(start) + pl.duration(minutes=15 * (pl.col("k") % KEY_SPAN)),
        value=pl.col("v"),
    ).sink_parquet(path, compression="zstd", compression_level=1)  # the lake's file: zstd, fast level
    return path


def _counts(cats: pl.DataFrame, month: str, good_rows: int, ingested: int, duplicates: int, quarantined: pl.DataFrame,
            estimated: int, findings: pl.DataFrame) -> dict[str, int]:
    total = lambda *cs: int(cats.filter(pl.col("cat").is_in(list(cs)))["n"].sum())  # noqa: E731
    rows_read = total(CATEGORY["good"], CATEGORY["quarantine"], CATEGORY["other_month"], CATEGORY["unplaced"])
    quarantined_rows = int(quarantined["line"].is_not_null().sum())
    month_rows = good_rows + quarantined_rows
    counts = {
        "rows_read": rows_read, "month_rows": month_rows, "other_month_rows": rows_read - month_rows,
        "ingested": ingested, "duplicates_dropped": duplicates, "quarantined": quarantined_rows,
        "unreadable_files": int(quarantined["line"].is_null().sum()), "blank_lines": total(CATEGORY["blank"]),
        "estimated_intervals": estimated, "findings": findings.height,
    }
    # the staged categories (one count) against what was collected and deduplicated (another)
    balanced = (
        good_rows == total(CATEGORY["good"])
        and total(CATEGORY["quarantine"]) <= quarantined_rows <= total(CATEGORY["quarantine"], CATEGORY["unplaced"])
        and ingested + duplicates + quarantined_rows == month_rows
        and counts["other_month_rows"] >= 0
    )
    if not balanced:
        raise MayoristaError(f"row accounting does not balance for {month}: {counts}")
    return counts


def summarize(result: IngestResult, completeness: pl.DataFrame, findings: pl.DataFrame, manifest: Manifest) -> str:
    c = result.counts
    lines = [
        f"meters {result.month}: {c['rows_read']:,} rows read, {c['month_rows']:,} of this month: "
        f"{c['ingested']:,} ingested, {c['duplicates_dropped']:,} duplicates dropped, {c['quarantined']:,} quarantined"
        f"; {c['other_month_rows']:,} of other months left alone (run {result.run_id})",
    ]
    by_channel = completeness.group_by("channel").agg(
        points=pl.len(), avg=pl.col("completeness_pct").mean(),
        incomplete=(pl.col("completeness_pct") < 100).sum(),
    ).sort("channel")
    total_expected = int(completeness["expected_intervals"].sum())
    total_received = int(completeness["received_intervals"].sum())
    # floored, so that 99.999% never reads as 100.00%
    pct = math.floor(10000.0 * total_received / total_expected) / 100 if total_expected else 0.0
    lines.append(f"completeness: {total_received:,} of {total_expected:,} expected intervals ({pct:.2f}%); "
                 f"{c['estimated_intervals']:,} intervals estimated")
    for row in by_channel.iter_rows(named=True):
        lines.append(f"  {row['channel']:<10} {row['points']} points, average {row['avg']:.2f}%, "
                     f"{row['incomplete']} below 100%")
    worst = completeness.group_by("point_id").agg(pl.col("completeness_pct").min()).filter(
        pl.col("completeness_pct") < 100).sort("completeness_pct", "point_id").head(5)
    if worst.height:
        lines.append("  least complete: " + ", ".join(f"{r['point_id']} {r['completeness_pct']:.1f}%"
                                                      for r in worst.iter_rows(named=True)))
    rules = findings.group_by("rule").agg(n=pl.len(), points=pl.col("point_id").n_unique()).sort("rule")
    lines.append("VEE findings: " + (", ".join(f"{r['rule']} {r['n']} ({r['points']} points)" for r in rules.iter_rows(named=True))
                                     or "none"))
    warnings = [r for r in result.validation if not r.success]
    lines.append(f"checks: {len(result.validation)} run, {len(warnings)} warning(s)"
                 + "".join(f"\n  - {r.source}: {r.check} [{r.column}] {r.detail}" for r in warnings[:5]))
    lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest.timings_s.items()))
    return "\n".join(lines)
