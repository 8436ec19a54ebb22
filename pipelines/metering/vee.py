"""VEE: validation, estimation and editing of the 15-minute series, as meter-data management does it.

All rules work on one frame of the month's readings sorted by the key k = series * KEY_SPAN + i
(series = point and channel, i = interval of the month), so a neighbouring interval is simply the
next row when its key is k + 1: no per-row Python, no window partitions, one sort for everything.

Rules (findings, one row each; thresholds in config/vee.toml):
  negative            value < 0
  above_max           value above the point's plausible maximum per interval
  spike               value > factor * max(neighbours) and exceeds it by >= min_delta (both neighbours present)
  stuck               the same non-zero value in >= min_intervals consecutive intervals (one finding per run)
  gap                 missing intervals while the point is active (one finding per run of missing intervals)
  duplicate_conflict  the same device, interval and channel read with different values
Estimation: a gap of at most max_gap_intervals with real readings on both sides is filled by linear
interpolation between them; estimates never replace a real reading (they only fill missing keys)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines import config
from pipelines.metering.readings import CHANNELS, KEY_SPAN

RULES = ("negative", "above_max", "spike", "stuck", "gap", "duplicate_conflict")


@dataclass(frozen=True)
class Thresholds:
    kwh_max: float = 5000.0
    kvarh_max: float = 5000.0
    point_max: dict[str, float] = field(default_factory=dict)
    spike_factor: float = 5.0
    spike_min_delta: float = 10.0
    stuck_min_intervals: int = 12
    max_gap_intervals: int = 8


def load_thresholds(path: Path | None = None) -> Thresholds:
    """Thresholds from `config/vee.toml` (or `path`)."""
    path = Path(path or config.config_dir() / "vee.toml")
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    maximum = raw.get("plausible_max", {})
    return Thresholds(
        kwh_max=float(maximum.get("kwh", 5000.0)),
        kvarh_max=float(maximum.get("kvarh", 5000.0)),
        point_max={str(k): float(v) for k, v in maximum.get("points", {}).items()},
        spike_factor=float(raw.get("spike", {}).get("factor", 5.0)),
        spike_min_delta=float(raw.get("spike", {}).get("min_delta", 10.0)),
        stuck_min_intervals=int(raw.get("stuck", {}).get("min_intervals", 12)),
        max_gap_intervals=int(raw.get("estimation", {}).get("max_gap_intervals", 8)),
    )


def series_max(point_ids: list[str], thresholds: Thresholds) -> pl.Series:
    """Plausible maximum per series index (point_idx * 4 + channel)."""
    values = []
    for point_id in point_ids:
        for channel in CHANNELS:
            default = thresholds.kwh_max if channel.startswith("kwh") else thresholds.kvarh_max
            values.append(thresholds.point_max.get(point_id, default))
    return pl.Series("max", values, dtype=pl.Float64)


_SERIES = pl.col("k") // KEY_SPAN
_I = pl.col("k") % KEY_SPAN


def deduplicate(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(readings k, v sorted by k with one row per key; conflicts k, detail; number of rows dropped).

    Of rows with the same key the last one read wins (files in path order, then line order): a resend
    supersedes the original. Differing values are reported; identical ones are only counted."""
    ordered = rows.sort("k")
    is_dup = ((pl.col("k") == pl.col("k").shift(1)) | (pl.col("k") == pl.col("k").shift(-1))).fill_null(False)
    flagged = ordered.with_columns(_dup=is_dup)
    dups = flagged.filter(pl.col("_dup"))
    if dups.height == 0:
        return ordered.select("k", "v"), pl.DataFrame(schema={"k": pl.Int64, "detail": pl.String}), 0
    groups = dups.sort("k", "file", "row").group_by("k", maintain_order=True).agg(
        pl.col("v").last(), n=pl.len(), distinct=pl.col("v").n_unique(),
        values=pl.col("v").cast(pl.String).str.join(" / "),
    )
    conflicts = groups.filter(pl.col("distinct") > 1).select(
        "k", detail=pl.format("{} readings with different values: {} (the last read is kept)", "n", "values"))
    kept = flagged.filter(~pl.col("_dup")).select("k", "v").merge_sorted(groups.select("k", "v"), key="k")
    return kept, conflicts, dups.height - groups.height


def series_stats(readings: pl.DataFrame) -> pl.DataFrame:
    """Per series: rows, distinct intervals, first and last interval, min and max value (one pass)."""
    return readings.group_by(_SERIES.alias("series")).agg(
        rows=pl.len(), repeats=(pl.col("k") == pl.col("k").shift(1)).sum(),
        first=_I.min(), last=_I.max(), min_value=pl.col("v").min(), max_value=pl.col("v").max(),
    ).with_columns(distinct_intervals=pl.col("rows") - pl.col("repeats")).drop("repeats")


def interval_findings(readings: pl.DataFrame, maximum: pl.Series, t: Thresholds) -> pl.DataFrame:
    """negative, above_max, spike and stuck findings as (k, rule, detail, value).

    One vectorised pass marks the few rows that can matter (negative, above the smallest limit, spike,
    or repeating the previous value); the per-point limits and the run lengths are then worked out on
    those rows only."""
    k, v = pl.col("k"), pl.col("v")
    prev_ok = k.shift(1) == k - 1
    next_ok = k.shift(-1) == k + 1
    neighbour = pl.max_horizontal(v.shift(1), v.shift(-1))
    repeat = (prev_ok & (v == v.shift(1))).fill_null(False)
    marked = readings.with_columns(
        negative=v < 0,
        spike=(prev_ok & next_ok & (v > t.spike_factor * neighbour) & (v - neighbour >= t.spike_min_delta)).fill_null(False),
        _repeat=repeat,
        _run_start=repeat.shift(-1).fill_null(False) & ~repeat,  # the first row of a run of repeats
        _big=v > float(maximum.min()) if maximum.len() else pl.lit(False),
        _neighbour=neighbour,
    ).filter(pl.col("negative") | pl.col("spike") | pl.col("_repeat") | pl.col("_run_start") | pl.col("_big"))
    marked = marked.with_columns(_limit=pl.lit(maximum).gather(_SERIES)).with_columns(above=v > pl.col("_limit"))
    parts = [
        marked.filter("negative").select("k", rule=pl.lit("negative"), detail=pl.format("negative value {}", "v"), value="v"),
        marked.filter("above").select("k", rule=pl.lit("above_max"),
                                      detail=pl.format("{} above the plausible maximum {}", "v", "_limit"), value="v"),
        marked.filter("spike").select("k", rule=pl.lit("spike"),
                                      detail=pl.format("{} against neighbours up to {}", "v", "_neighbour"), value="v"),
    ]
    runs = (
        marked.filter(pl.col("_repeat") | pl.col("_run_start"))
        .with_columns(_run=(~pl.col("_repeat")).cum_sum())
        .group_by("_run").agg(pl.col("k").first(), pl.col("v").first(), length=pl.len())
        .filter((pl.col("length") >= t.stuck_min_intervals) & (pl.col("v") != 0))
        .sort("k")
    )
    parts.append(runs.select("k", rule=pl.lit("stuck"), detail=pl.format(
        "value {} repeated in {} consecutive intervals", "v", "length"), value="v"))
    return pl.concat(parts)


def gaps(readings: pl.DataFrame, ranges: pl.DataFrame, t: Thresholds,
         stats: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(gap findings k, rule, detail, value; estimated readings k, v).

    `ranges` (point_idx, first_i, last_i) are the point's active intervals of the month. A gap is a run of
    active intervals with no reading; it is estimated when it is short and both neighbours are real."""
    k, v = pl.col("k"), pl.col("v")
    interior = readings.with_columns(k_next=k.shift(-1), v_next=v.shift(-1)).filter(
        (pl.col("k_next") // KEY_SPAN == _SERIES) & (pl.col("k_next") - k > 1)
    ).select(series=_SERIES, lo=_I + 1, hi=pl.col("k_next") % KEY_SPAN - 1, va=v, vb=pl.col("v_next"))

    per_series = (stats if stats is not None else series_stats(readings)).select("series", "first", "last")
    bounds = ranges.group_by("point_idx").agg(pl.col("first_i").min(), pl.col("last_i").max())
    all_series = bounds.join(pl.DataFrame({"ch": list(range(len(CHANNELS)))}), how="cross").select(
        series=pl.col("point_idx") * len(CHANNELS) + pl.col("ch"), first_i="first_i", last_i="last_i")
    edges = all_series.join(per_series, on="series", how="left")
    none = pl.lit(None, pl.Float64)
    candidates = pl.concat([
        interior,
        edges.filter(pl.col("first").is_null()).select("series", lo="first_i", hi="last_i", va=none, vb=none),
        edges.filter(pl.col("first") > pl.col("first_i")).select("series", lo="first_i", hi=pl.col("first") - 1, va=none, vb=none),
        edges.filter(pl.col("last") < pl.col("last_i")).select("series", lo=pl.col("last") + 1, hi="last_i", va=none, vb=none),
    ])
    # clip each candidate to the point's active ranges (a point may be inactive for days inside the month)
    clipped = (
        candidates.with_columns(point_idx=pl.col("series") // len(CHANNELS))
        .join(ranges, on="point_idx")
        .with_columns(from_i=pl.max_horizontal("lo", "first_i"), to_i=pl.min_horizontal("hi", "last_i"))
        .filter(pl.col("from_i") <= pl.col("to_i"))
        .with_columns(length=pl.col("to_i") - pl.col("from_i") + 1)
        .with_columns(estimate=(
            pl.col("va").is_not_null() & (pl.col("from_i") == pl.col("lo")) & (pl.col("to_i") == pl.col("hi"))
            & (pl.col("length") <= t.max_gap_intervals)))
        .sort("series", "from_i")
    )
    findings = clipped.select(
        k=pl.col("series") * KEY_SPAN + pl.col("from_i"),
        rule=pl.lit("gap"),
        detail=pl.format("{} interval(s) missing{}", "length", pl.when("estimate")
                         .then(pl.lit("; estimated by linear interpolation"))
                         .otherwise(pl.lit(" (not estimated)"))),
        value=pl.lit(None, pl.Float64),
        last_i=pl.col("to_i"),
    )
    estimated = (
        clipped.filter("estimate")
        .with_columns(i=pl.int_ranges("from_i", pl.col("to_i") + 1))
        .explode("i")
        .select(
            k=pl.col("series") * KEY_SPAN + pl.col("i"),
            # straight line from the reading before the gap (step 0) to the one after it (step length + 1)
            v=pl.col("va") + (pl.col("vb") - pl.col("va")) * (pl.col("i") - pl.col("from_i") + 1) / (pl.col("length") + 1),
        )
    )
    return findings, estimated
