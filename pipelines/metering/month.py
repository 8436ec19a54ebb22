"""One month of metering computed from a `MonthInputs` value: its stored readings plus the rows this
run read for it -> current readings (stored.merge: the later landing wins) -> VEE findings and
short-gap estimates -> completeness and hourly values -> the month's writes (`MonthState`).

Which rows are a month's: those whose interval (interval_end - 15 min) starts in it. Every row read is
accounted for: month_rows = ingested + duplicates_dropped + superseded + quarantined; the run stops if
that ever fails to hold."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.errors import MayoristaError
from pipelines.metering import aggregates, checks, estimation, keys, ledger, registers, stored, vee
from pipelines.metering import registry as reg
from pipelines.metering import warehouse_rows as rows
from pipelines.metering.readings import CATEGORY, Staged
from pipelines.periods import Month, intervals_between
from pipelines.warehouse import Reader, Write

logger = logging.getLogger(__name__)

_NO_CATS = {
    "cat": pl.UInt8,
    "file": pl.UInt32,
    "n": pl.UInt32,
    "rel_min": pl.Int16,
    "first_k": pl.Int64,
    "last_k": pl.Int64,
}
_NO_ROWS = {"k": pl.Int64, "v": pl.Float64, "file": pl.UInt32, "row": pl.UInt32}
_NO_RULES = {"k": pl.Int64, "rule": pl.String, "detail": pl.String, "value": pl.Float64}


@dataclass(frozen=True)
class MonthInputs:
    """Everything one month's computation reads. `derive` False (a month after the run's, met in a file
    of the run's): its new readings are stored, and its findings, estimates, completeness and hourly
    values are left to its own run (a month barely begun would otherwise be published as one long gap)."""

    month: Month
    staged: Staged | None  # the rows this run read for the month (None: none)
    reader: Reader  # the warehouse as the run planned (pinned to its snapshot): stored readings, history
    registry: pl.DataFrame
    thresholds: vee.Thresholds
    plan: ledger.Plan
    moved: list[int]  # files that changed while read: not ingested
    now: datetime  # the time of the run (local): nothing after it is estimated or called a gap
    reads: pl.DataFrame | None  # validated cumulative register reads (sum_check), when landed
    run_id: str
    out: Path  # where the month's big outputs are written as Parquet
    background: Callable[..., Future]  # runs a function next to the month's work
    earlier: Carry | None = None  # the month before's last weeks, when this run (or the one before it) computed it
    derive: bool = True
    keep_carry: bool = False  # keep the month's last weeks as history for the next month


@dataclass
class MonthState:
    """One month's outputs, ready to publish (the big ones as local Parquet files in the scratch)."""

    month: Month
    writes: list[Write]
    counts: dict[str, int]
    completeness: pl.DataFrame
    findings: pl.DataFrame
    quarantine: pl.DataFrame
    ledger: pl.DataFrame  # per file: file, month, rows, good, first_interval, last_interval
    check_frame: pl.DataFrame | None  # the month per point and channel, for the metering_month suite
    carry: Carry | None = None  # the month's last weeks as history for the next month


@dataclass(frozen=True)
class Carry:
    """A month's last weeks as the history of the next month (its `history_before`, without reading it
    back from the warehouse): the usable readings (vee.BEFORE_SCHEMA, j counted from the NEXT month's
    start), series numbered with `points` (the month's point_id -> point_idx). `snapshot_id`: the
    warehouse snapshot that published the month, set once it is published; another run's month is only
    handed this when it plans against that same snapshot (nothing published in between)."""

    month: Month
    days: int  # how far back it reaches (`history_days`)
    points: pl.DataFrame
    rows: pl.DataFrame | Path  # or the Parquet file holding them (kept there between two runs)
    snapshot_id: int | None = None


@dataclass
class _Derived:
    writes: list[Write]
    estimated: pl.DataFrame
    findings: pl.DataFrame
    completeness: pl.DataFrame
    check_frame: pl.DataFrame | None = None
    carry: Carry | None = None


def compute(inp: MonthInputs) -> MonthState:
    """The month's state from its stored readings plus the rows this run read for it."""
    m, plan = inp.month, inp.plan
    points = reg.month_points(inp.registry, m)
    cats, new, quarantined = _staged_rows(inp)
    good_rows = new.height
    merged = stored.merge(new, stored.month_readings(inp.reader, m, points, spill=inp.out))
    del new
    inp.out.mkdir(parents=True, exist_ok=True)
    readings_file = (  # written while VEE works on the same rows
        inp.background(
            rows.readings_file, merged.appended, points, m, plan, inp.run_id, inp.out / "meter_readings.parquet"
        )
        if merged.appended.height
        else None
    )
    derived = _derive(inp, merged, points) if inp.derive else _stored_only(m, merged, points)
    writes = derived.writes
    replaced = rows.superseded(inp.reader, inp.run_id, m, merged, points, plan, datetime.now())
    if readings_file is not None:
        stored_keys = rows.stored_keys(merged.replaced, points, m)
        writes.insert(
            0,
            Write(
                "meter_readings",
                str(readings_file.result()),
                {"month": m.label},
                adopt=True,
                append=True,
                delete_keys=stored_keys if stored_keys.height else None,
            ),
        )
    if replaced.height:
        writes.append(Write(stored.SUPERSEDED, replaced, {}, append=True))
    counts = _counts(cats, m, good_rows, merged, quarantined, derived.estimated.height, derived.findings)
    per_file = rows.ledger_months(cats, inp.staged, m, inp.moved)
    logger.info("%s: %s", m, counts)
    return MonthState(
        m,
        writes,
        counts,
        derived.completeness,
        derived.findings,
        quarantined,
        per_file,
        derived.check_frame,
        derived.carry,
    )


def _staged_rows(inp: MonthInputs) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(the staged rows counted by category and file, the good rows (k, v, file, row), the month's
    quarantine rows)."""
    if inp.staged is None:
        return pl.DataFrame(schema=_NO_CATS), pl.DataFrame(schema=_NO_ROWS), rows.quarantine_schema()
    # one read of the staged rows for both (collect_all shares the scan)
    cats, new = pl.collect_all(
        [
            inp.staged.scan()
            .group_by("cat", "file")
            .agg(n=pl.len(), rel_min=pl.col("rel").min(), first_k=pl.col("k").min(), last_k=pl.col("k").max()),
            inp.staged.scan().filter(pl.col("cat") == CATEGORY["good"]).select("k", "v", "file", "row"),
        ]
    )
    return cats, new, rows.quarantine(inp.staged, cats, inp.month, inp.plan)


def _derive(inp: MonthInputs, merged: stored.Merged, points: pl.DataFrame) -> _Derived:
    """Findings, estimates, completeness and hourly values of the month's current readings."""
    m, t, readings = inp.month, inp.thresholds, merged.current
    ranges = reg.point_day_ranges(inp.registry, m, points)
    stats = vee.series_stats(readings)
    checked = validate(inp, readings, stats, points, merged)
    horizon = _horizon_ranges(ranges, m, inp.now)  # never estimate, nor call a gap, what has not happened yet
    gaps = vee.gap_runs(readings, horizon, stats)
    # like_day looks back at most like_day_window_days from the first gapped day: a history frame of the
    # gapped series from there on (a month whose last day is missing gaps every series: its history frame
    # was the four weeks before and the whole month, 45 M rows, and the month's peak memory)
    since = keys.day_index(gaps["from_i"].min()) - t.like_day_window_days if gaps.height else 0
    gap_rules, estimated = estimation.estimate(
        readings,
        horizon,
        t,
        month_start=m.start,
        history=checked.history(readings, m.start, gaps["series"].unique(), since),
        kinds=estimation.month_day_kinds(m.start, m.end, t),
        flagged=checked.flagged,
        stats=stats,
        runs=gaps,  # computed above for the history's window: not again
    )
    findings = rows.findings(m, points, checked.findings, gap_rules, checked.conflicts)
    completeness = aggregates.completeness(stats, points, m)
    hourly = rows.hourly(aggregates.hourly(readings, estimated), points, m)
    check_frame = checks.month_frame(stats, completeness, hourly, points)
    hourly.write_parquet(inp.out / "meter_hourly.parquet", compression="zstd", compression_level=1)
    del hourly
    # the month's last weeks, kept when the next month is computed next (by this run or the next one):
    # built last, once the estimates' history frames are gone (a month with a missing last day
    # estimates every series: built before them, these 21 M rows raised its peak by 0.4 GB)
    carry = _carry(readings, checked, points, m, history_days(t)) if inp.keep_carry else None
    writes = [
        Write("meter_hourly", str(inp.out / "meter_hourly.parquet"), {"month": m.label}, adopt=True),
        Write("meter_completeness", completeness, {"month": m.label}),
        Write("vee_findings", findings, {"month": m.label}),
        *rows.estimate_versions(inp.reader, inp.run_id, m, points, estimated, readings),
    ]
    return _Derived(writes, estimated, findings, completeness, check_frame, carry)


def _stored_only(m: Month, merged: stored.Merged, points: pl.DataFrame) -> _Derived:
    """A month after the run's: its readings are stored, nothing is derived (no findings, no estimates)."""
    findings = rows.findings(
        m,
        points,
        pl.DataFrame(schema=_NO_RULES),
        pl.DataFrame(schema={**_NO_RULES, "last_i": pl.Int64}),
        pl.DataFrame(schema={"k": pl.Int64, "detail": pl.String}),
    )
    estimated = pl.DataFrame(schema={"k": pl.Int64, "v": pl.Float64, "method": pl.String})
    completeness = aggregates.completeness(vee.series_stats(merged.current), points, m)
    return _Derived([], estimated, findings, completeness)


@dataclass
class Validated:
    findings: pl.DataFrame  # (k, rule, detail, value) of every rule but gap and duplicate_conflict
    conflicts: pl.DataFrame  # (k, detail)
    before: pl.DataFrame  # the good readings of the weeks before the month (vee.BEFORE_SCHEMA)
    flagged: pl.DataFrame  # (k) the month's readings with a finding: no history for a rule or an estimate

    def history(
        self, readings: pl.DataFrame, start: datetime, series: pl.Series | None = None, since: int | None = None
    ) -> pl.DataFrame:
        """The history frame (the weeks before: their usable readings; the month: flagged marked), of
        `series` only when given (built for the series with a gap to estimate, not for the whole market),
        from day `since` of the month on when given (0 = its first day, negative: the days before it)."""
        before = self.before
        if series is not None:
            before = before.filter(pl.col("series").cast(pl.Int64).is_in(series.implode()))
            readings = readings.filter(keys.series().is_in(series.implode()))
        if since is not None:  # day d holds j (and i) = 96 d + 1 .. 96 d + 96
            first = since * keys.INTERVALS_PER_DAY + 1
            before = before.filter(pl.col("j") >= first)
            readings = readings.filter(keys.interval_index() >= first) if first > 1 else readings
        return pl.concat([vee.before_as_history(before, start), vee.history_from_month(readings, self.flagged, start)])


def validate(
    inp: MonthInputs, readings: pl.DataFrame, stats: pl.DataFrame, points: pl.DataFrame, merged: stored.Merged
) -> Validated:
    """Every validation rule on the month's current readings (config/vee.toml). The history rules
    compare with the point's own real readings of the previous weeks, read from the warehouse."""
    m, t, src = inp.month, inp.thresholds, inp.reader
    maximum = vee.series_max(points["point_id"].to_list(), t)
    conflicts = _conflicts(merged, stored.month_superseded(src, m, points), readings)
    own = pl.concat(
        [
            vee.interval_findings(readings, maximum, t),
            vee.zero_consumption(readings, points, t),
            vee.reactive_without_active(readings, t),
        ]
    )
    if inp.reads is not None:
        device_days = reg.device_days(inp.registry, m, points)
        checked, skipped = registers.month_sum_check(inp.reads, device_days, m, readings, t)
        own = pl.concat([own, checked.select(own.columns).cast(own.schema), _skipped_checks(skipped, m.start)])
    before = (
        _uncarry(inp.earlier, points)
        if inp.earlier is not None
        else stored.history_before(src, m, points, history_days(t), spill=inp.out)
    )
    flagged = pl.concat([own.select("k"), conflicts.select("k")])
    compared = vee.vs_history_of(readings, before, flagged, m.start, t)
    # a reading far from its history is no model for an estimate either
    flagged = pl.concat([flagged, compared.select("k")])
    return Validated(pl.concat([own, compared.cast(own.schema)]), conflicts, before, flagged)


def history_days(t: vee.Thresholds) -> int:
    return max(7 * t.history_weeks, t.like_day_window_days)


def _carry(readings: pl.DataFrame, rules: Validated, points: pl.DataFrame, m: Month, days: int) -> Carry:
    """The month's own last `days` days as the next month's history: what `stored.history_before` reads
    once the month is published (its current readings without findings), kept instead of read back."""
    first = intervals_between(m.start, m.end - timedelta(days=days))
    usable = (  # one lazy plan: the 21 M rows are not materialised after each step (0.5-0.6 -> 0.4 s)
        readings.lazy()
        .filter(keys.interval_index() > first)
        .join(rules.flagged.lazy().select("k").unique(), on="k", how="anti")
        .filter(pl.col("v").is_finite())
        .select(
            series=keys.series(),
            j=keys.interval_index() - m.intervals,  # the month's last interval is j = 0 of the next
            v="v",
        )
        .cast(vee.BEFORE_SCHEMA)
        .collect()
    )
    return Carry(m, days, points.select("point_id", "point_idx"), usable)


def _uncarry(carried: Carry, points: pl.DataFrame) -> pl.DataFrame:
    """The carried rows numbered with this month's points (those no longer active drop out)."""
    rows = pl.read_parquet(carried.rows) if isinstance(carried.rows, Path) else carried.rows
    now = carried.points.join(points.select("point_id", new="point_idx"), on="point_id")
    if now.height == carried.points.height == points.height and (now["point_idx"] == now["new"]).all():
        return rows  # the same points in the same order: the common case, nothing to renumber
    point = pl.col("series") // keys.N_CHANNELS
    return (
        rows.with_columns(new=point.replace_strict(now["point_idx"], now["new"], default=None, return_dtype=pl.Int32))
        .drop_nulls("new")
        .select(series=keys.series_of(pl.col("new"), pl.col("series") % keys.N_CHANNELS), j="j", v="v")
        .cast(vee.BEFORE_SCHEMA)
    )


def _skipped_checks(skipped: pl.DataFrame, start: datetime) -> pl.DataFrame:
    """sum_check pairs that could not be checked, as findings at the later read: reported, never passed."""
    i = keys.interval_of(start, pl.col("to_read")).clip(1, keys.KEY_SPAN - 1)
    return skipped.filter(pl.col("series").is_not_null()).select(
        k=keys.encode(pl.col("series"), i),
        rule=pl.lit("sum_check"),
        detail=pl.format("not checked: {} (register reads on lines {} and {})", "reason", "from_line", "to_line"),
        value=pl.lit(None, pl.Float64),
    )


def _horizon_ranges(ranges: pl.DataFrame, m: Month, now: datetime) -> pl.DataFrame:
    """The points' active ranges cut at the last interval that has ended by `now`."""
    last = intervals_between(m.start, now)
    return ranges.with_columns(last_i=pl.min_horizontal("last_i", pl.lit(last))).filter(
        pl.col("first_i") <= pl.col("last_i")
    )


def _conflicts(merged: stored.Merged, earlier: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """duplicate_conflict findings (k, detail): every key of the month with a superseded reading of
    another value, from earlier runs (`earlier`) or this one, against the value that stands."""
    superseded = pl.concat(
        [
            earlier.select("k", "v"),
            merged.replaced.select("k", "v"),
            merged.lost.select("k", "v"),
        ]
    )
    if superseded.is_empty():
        return pl.DataFrame(schema={"k": pl.Int64, "detail": pl.String})
    return (
        superseded.group_by("k")
        .agg(old=pl.col("v").cast(pl.String).str.join(" / "), n=pl.len())
        .join(current.rename({"v": "now"}), on="k", how="inner")
        .select(
            "k",
            detail=pl.format(
                "{} readings with different values: {} then {} (the one landed last, {}, is kept)",
                pl.col("n") + 1,
                "old",
                "now",
                "now",
            ),
        )
        .sort("k")
    )


def _counts(
    cats: pl.DataFrame,
    month: Month,
    good_rows: int,
    merged: stored.Merged,
    quarantined: pl.DataFrame,
    estimated: int,
    findings: pl.DataFrame,
) -> dict[str, int]:
    total = lambda *cs: int(cats.filter(pl.col("cat").is_in(list(cs)))["n"].sum())  # noqa: E731
    quarantined_rows = int(quarantined["line"].is_not_null().sum())
    month_rows = good_rows + quarantined_rows
    counts = {
        "month_rows": month_rows,
        "ingested": merged.appended.height,
        "duplicates_dropped": merged.duplicates,
        "superseded": merged.lost.height,
        "replaced_stored": merged.replaced.height,
        "quarantined": quarantined_rows,
        "unreadable_files": int(quarantined["line"].is_null().sum()),
        "blank_lines": total(CATEGORY["blank"]),
        "readings": merged.current.height,
        "estimated_intervals": estimated,
        "findings": findings.height,
    }
    # the staged categories (one count) against what was collected and merged (another)
    balanced = (
        good_rows == total(CATEGORY["good"])
        and total(CATEGORY["quarantine"]) <= quarantined_rows <= total(CATEGORY["quarantine"], CATEGORY["unplaced"])
        and merged.appended.height + merged.duplicates + merged.lost.height + quarantined_rows == month_rows
    )
    if not balanced:
        raise MayoristaError(f"row accounting does not balance for {month}: {counts}")
    return counts
