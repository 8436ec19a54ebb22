"""`mayorista meters ingest --month M`: the new readings files, and the month's state, end to end.

registry (GX) -> the ledger says which landed files are new (pipelines/metering/ledger.py) -> one
streaming pass over each new file, per month it holds (readings.stage) -> quarantine -> for each month
that got new rows, and for M: the stored month plus the new rows (stored.merge: later landing wins) ->
VEE findings and short-gap estimates -> completeness and hourly values -> GX on the month's aggregates
-> one warehouse transaction: new readings appended, replaced ones kept as superseded, each month's
derived tables replaced, the files recorded in the ledger (pipelines.run).

A run's cost is its new files plus one month of stored readings per month it touches, whatever the
history. Files whose first interval lies after M are left for their month's run (a backfill reads each
month's files in that month's run); a late resend of an earlier month is read and that month
recomputed in the same transaction.

Which rows are a month's: those whose interval (interval_end - 15 min) starts in it. A row whose
timestamp does not parse, or lies before the floor (`earliest_interval_end`, config/vee.toml) or after
the time of the run, has no month of its own: it is quarantined with its line in the month of the
earliest valid interval in its file (a file in which no timestamp parses is reported as unreadable).

Two runs at once (e.g. a backfill of March next to the daily run of April): the one that publishes
second finds, inside its publish, that the other recorded some of the same files, or a month it
publishes, in the ledger meanwhile. It publishes nothing of what it computed, plans again against the
new ledger (the other run's files are now known and skipped) and computes again: both land, and a run
of the same month twice ends with the second finding nothing new ("already ingested by run X").

Every row read is accounted for, per month: month_rows = ingested + duplicates_dropped + superseded +
quarantined; the run stops if that ever fails to hold."""

from __future__ import annotations

import fcntl
import gc
import hashlib
import logging
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipelines import config, quality
from pipelines import run as runs
from pipelines import warehouse as store
from pipelines.errors import InputError, MayoristaError, environment_fault
from pipelines.manifest import Manifest
from pipelines.metering import aggregates, checks, estimation, keys, ledger, registers, stored, vee
from pipelines.metering import registry as reg
from pipelines.metering.keys import CHANNELS
from pipelines.metering.readings import (
    CATEGORY,
    COLUMNS,
    EXCERPT_CHARS,
    Staged,
    earliest_interval_end,
    reasons,
    stage,
)
from pipelines.periods import GUATEMALA, Month, add_months, month_bounds, month_label
from pipelines.warehouse import Write

logger = logging.getLogger(__name__)

PIPELINE = "meters"
ESTIMATES = "meter_estimates"
REPLANS = 5  # a run that raced another plans again at most this many times
WAREHOUSE_TABLES = (
    "meter_readings",
    stored.SUPERSEDED,
    "meter_estimates",
    "meter_completeness",
    "meter_hourly",
    "vee_findings",
    "quarantine",
    "metering_points",
    ledger.TABLE,
)


@dataclass
class IngestResult:
    month: str
    run_id: str
    summary: str
    counts: dict[str, int]
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why
    refused: dict[str, str] = field(default_factory=dict)  # path under the landing folder -> why not read
    raced: list[str] = field(default_factory=list)  # runs that published the same files or months first
    validation: list = field(default_factory=list)
    snapshot_id: int | None = None
    months: dict[str, dict[str, int]] = field(default_factory=dict)  # every month the run (re)computed


@dataclass
class MonthState:
    """One month's outputs, ready to publish (the big ones as local Parquet files in the scratch)."""

    month: str
    writes: list[Write]
    counts: dict[str, int]
    completeness: pl.DataFrame
    findings: pl.DataFrame
    quarantine: pl.DataFrame
    ledger: pl.DataFrame  # per file: file, month, rows, good, first_interval, last_interval
    check_frame: pl.DataFrame | None  # the month per point and channel, for the metering_month suite
    carry: pl.DataFrame | None = None  # the month's last weeks as history for the next month (point_id, channel, ...)


def ingest_month(
    month: Month | str,
    input_dir: Path,
    *,
    warehouse: str | Path | None = None,
    lake_root: str | Path | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Ingest what is new under `input_dir` for `month` (and earlier months) and publish the month's
    state. `now` (local Guatemala time, default the clock) is when the run reads: readings of intervals
    that had not ended by then are quarantined."""
    month = Month.of(month).label  # parsed at the edge (CLI, DAG, backfill); the label is what is stored
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} does not exist")
    now = now or datetime.now(GUATEMALA).replace(tzinfo=None)
    with runs.start(PIPELINE, month, run_id=run_id, warehouse=warehouse, lake_root=lake_root, warm=False) as r:
        thresholds = vee.load_thresholds()
        with r.step("registry"):
            registry = reg.load_registry(input_dir)
            if reg.has_problems(registry):  # fail before reading millions of rows; GX writes the report
                r.validation = reg.validate(registry)
                quality.raise_on_errors(r.validation)
            r.manifest.add_input(input_dir / _registry_name(input_dir), registry.height)
        floor = earliest_interval_end()
        raced: list[str] = []
        inputs = len(r.manifest.inputs)
        for attempt in range(REPLANS + 1):
            con = store.connect(r.warehouse, read_only=True) if store.exists(r.warehouse) else None
            try:
                result = _run(r, con, input_dir, registry, thresholds, now, floor)
                break
            except Raced as exc:
                raced += [run for run in exc.runs if run not in raced]
                if attempt == REPLANS:
                    raise MayoristaError(
                        f"other runs kept publishing the same files or months while this one ran "
                        f"({', '.join(raced[:3])}); nothing of this run was published after {REPLANS + 1} "
                        "attempts: run it again"
                    ) from None
                logger.warning("%s: %s; planning again against the new ledger", month, exc)
                _reset(r, inputs)
            finally:
                if con is not None:
                    con.close()  # closed by _run before its publish already (an open reader blocks a SQLite catalog's writer)
        if raced:
            result.raced = raced
            result.summary += (
                f"\nplanned again after run(s) {', '.join(raced)} published some of the same files or months "
                "first: what they ingested was skipped here (already ingested by them)"
            )
    problems = []
    if result.unreadable:
        listing = "\n".join(f"  {name}: {why}" for name, why in result.unreadable.items())
        problems.append(
            f"{len(result.unreadable)} readings file(s) could not be read; the other files were ingested "
            f"and published, these are also in `quarantine` and are read again by the next run:\n{listing}"
        )
    if result.refused:
        listing = "\n".join(f"  {name}: {why}" for name, why in result.refused.items())
        problems.append(
            f"{len(result.refused)} path(s) under readings/ were refused and not opened (only regular files "
            f"inside the landing folder are read); the other files were ingested and published:\n{listing}"
        )
    if problems:
        raise InputError("\n\n".join([*problems, result.summary]))
    return result


class Raced(MayoristaError):
    """Raised inside the publish: another run recorded some of the same files, or a month this run
    publishes, in the ledger since this run planned. Nothing is published; the run plans again."""

    def __init__(self, runs_: list[str]) -> None:
        super().__init__(f"run(s) {', '.join(runs_)} published some of the same files or months while this one ran")
        self.runs = runs_


def _reset(r: runs.Run, inputs: int) -> None:
    """Forget what an attempt that raced another run computed, before planning again."""
    r.validation = []
    r.manifest.status = "running"
    del r.manifest.inputs[inputs:]
    r.manifest.counts.clear()
    r.manifest.outputs.clear()
    r.manifest.periods = {}
    for folder in ("staged", "out"):
        shutil.rmtree(r.scratch / folder, ignore_errors=True)
    gc.collect()


def _registry_name(input_dir: Path) -> str:
    return "metering_points.parquet" if (input_dir / "metering_points.parquet").exists() else "metering_points.csv"


def _run(
    r: runs.Run,
    con: duckdb.DuckDBPyConnection | None,
    input_dir: Path,
    registry: pl.DataFrame,
    thresholds: vee.Thresholds,
    now: datetime,
    floor: datetime,
) -> IngestResult:
    month, manifest = r.period, r.manifest
    seen_at = datetime.now()
    with manifest.step("plan"):
        plan = ledger.plan(input_dir, month, ledger.load(con), now=now, floor=floor)
        if not plan.files and plan.skipped == 0 and not plan.deferred and not plan.refused:
            raise InputError(f"no readings files (*.csv or *.parquet) under {input_dir / 'readings'}")
    # the warehouse's extensions load now, not during the plan: loading holds the GIL that the plan's
    # thousand small file opens need; the parse that follows runs in polars without it
    r.warm()
    # the files' sha256 for the ledger and the manifest, computed alongside the parse
    hashes_future = r.in_background(ledger.hashes, plan)

    with manifest.step("read_readings"):
        staged = _stage_all(r, plan, registry, now, floor)
        reads = registers.read(input_dir)  # optional cumulative register reads, for sum_check (small: read every run)
        if reads is not None:
            reads = registers.validate(reads, registry)
    # GX's import (seconds of Python) overlaps the months' work, and its suites run after it. Not during
    # the plan and the parse: their thousands of small file opens and sniffs each waited for the GIL
    # behind it, and the parse took 4 s longer; the months' polars and numpy work leaves it more room.
    gx_ready = quality.warm("metering_points", "metering_month")
    moved = ledger.changed_while_read(plan, list(range(len(plan.files))))
    for index in moved:
        for one in staged.values():
            one.excluded.add(index)
    months = sorted(set(staged) | {month})
    states: list[MonthState] = []
    for m in months:
        # the end of the month before, when this run computed it: the history the warehouse does not hold yet
        earlier = states[-1].carry if states and states[-1].month == Month.parse(m).previous.label else None
        with manifest.step(f"month {m}" if m != month else "month"):
            states.append(
                _month(
                    r,
                    con,
                    m,
                    staged.get(m),
                    registry,
                    thresholds,
                    plan,
                    moved,
                    now,
                    reads,
                    earlier,
                    derive=m <= month,
                    keep_carry=m != months[-1],
                )
            )
        if m != months[-1]:
            gc.collect()  # one month's frames are gone before the next month's are built

    if con is not None:
        con.close()  # before the publish: an open reader would block the writer of a SQLite catalog
    hashes = hashes_future.result()
    unreadable = {i: (m, why) for m, one in staged.items() for i, why in one.unreadable.items() if i not in moved}
    per_file = pl.concat([s.ledger for s in states]) if states else pl.DataFrame()
    ledger_rows = ledger.rows(plan, per_file, unreadable, hashes, r.run_id, seen_at)
    read_files = [i for i in range(len(plan.files)) if i not in moved]
    for i in read_files:
        manifest.inputs.append(
            {
                "file": plan.labels[i],
                "sha256": hashes[i],
                "bytes": plan.sizes[i],
                **({"unreadable": unreadable[i][1]} if i in unreadable else {}),
            }
        )
    gx_ready.join()
    with manifest.step("checks"):
        validation = [
            c for s in states if s.check_frame is not None for c in checks.check_month_frame(s.check_frame, s.month)
        ]
    counts = _totals(states, plan, moved, len(unreadable))
    manifest.counts.update(counts)
    manifest.periods = {s.month: s.counts for s in states if s.month != month}
    r.validation = reg.validate(registry) + validation
    quality.raise_on_errors(r.validation)  # an error-level check stops the run before anything is published

    labels = pl.DataFrame({"path": [plan.labels[i] for i in read_files]}, schema={"path": pl.String})
    rejected, register_file = _register_quarantine(input_dir, reads, month)
    writes = [w for s in states for w in s.writes] + [
        Write(
            "quarantine",
            pl.concat([*[s.quarantine for s in states], rejected]),
            {},
            ("month",),
            delete_keys=pl.concat([labels, pl.DataFrame({"path": register_file}, schema={"path": pl.String})]).rename(
                {"path": "source_file"}
            ),
        ),
        Write(
            "metering_points",
            registry.with_columns(source_file=pl.lit(_registry_name(input_dir))),
            {"source_file": _registry_name(input_dir)},
        ),
        # a path refused before and read now, or refused again: its earlier `refused` row goes (first:
        # the next write inserts this run's rows)
        Write(
            ledger.TABLE,
            ledger_rows.clear(),
            {"status": "refused"},
            delete_keys=pl.concat([labels, pl.DataFrame({"path": list(plan.refused)}, schema={"path": pl.String})]),
        ),
        # a deferred file read now, recorded again (changed, touched) or gone: its `deferred` row goes
        Write(
            ledger.TABLE,
            ledger_rows.clear(),
            {"status": "deferred"},
            delete_keys=ledger.undeferred(plan, labels["path"].to_list()),
        ),
        Write(ledger.TABLE, ledger_rows, {"status": "unreadable"}, delete_keys=labels),
    ]
    with _publish_lock(r.warehouse):
        r.publish(writes, guard=lambda c: _not_raced(c, ledger_rows, plan, [s.month for s in states], r.run_id))
    by_label = {plan.labels[i]: why for i, (_, why) in unreadable.items()}
    result = IngestResult(
        month,
        r.run_id,
        "",
        counts,
        by_label,
        dict(plan.refused),
        validation=r.validation,
        snapshot_id=r.snapshot_id,
        months={s.month: s.counts for s in states},
    )
    result.summary = summarize(result, states, plan, moved, manifest)
    return result


@contextmanager
def _publish_lock(warehouse: str) -> Iterator[None]:
    """Metering publishes to one warehouse from this machine, one at a time: the ledger check of
    `_not_raced` and the commit happen together, so two runs cannot both pass the check and both commit
    (DuckLake merges two appends to a table without a conflict). Only the publish waits, seconds; the
    runs' reading and computing still overlap. The lock is a file in the scratch root, released by the
    OS when a process dies."""
    name = warehouse if store.is_postgres(warehouse) else str(Path(warehouse).resolve())
    root = config.scratch_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = open(root / f"meters-publish-{hashlib.sha256(name.encode()).hexdigest()[:16]}.lock", "w")  # noqa: SIM115
    except OSError as exc:
        raise environment_fault(exc, root, "take the metering publish lock") or exc
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _not_raced(
    con: duckdb.DuckDBPyConnection, ledger_rows: pl.DataFrame, plan: ledger.Plan, months: list[str], run_id: str
) -> None:
    """Inside the publish: no run unknown when this one planned has recorded, since, one of the file
    versions this run read (their readings would be stored twice) or a month this run publishes (its
    derived tables would be replaced by ones computed without that run's rows). Raises `Raced`: the run
    plans again against the ledger as it now is."""
    if ledger.TABLE not in store.tables(con):
        return
    read = ledger_rows.filter(pl.col("status").is_in(ledger.READ)).select("path", "sha256").unique()
    con.register("_read", read.to_arrow())
    con.register(
        "_known", pl.DataFrame({"run_id": sorted(plan.runs | {run_id})}, schema={"run_id": pl.String}).to_arrow()
    )
    con.register("_months", pl.DataFrame({"month": months}, schema={"month": pl.String}).to_arrow())
    try:
        others = con.execute(
            f"""SELECT DISTINCT l.run_id FROM {store.ALIAS}.{ledger.TABLE} l
                WHERE l.status IN ('ingested', 'quarantined')
                  AND l.run_id NOT IN (SELECT run_id FROM _known)
                  AND (EXISTS (SELECT 1 FROM _read r WHERE r.path = l.path AND r.sha256 = l.sha256)
                       OR l.month IN (SELECT month FROM _months))
                ORDER BY 1"""
        ).fetchall()
    finally:
        for name in ("_read", "_known", "_months"):
            con.unregister(name)
    if others:
        raise Raced([row[0] for row in others])


def _stage_all(
    r: runs.Run, plan: ledger.Plan, registry: pl.DataFrame, now: datetime, floor: datetime
) -> dict[str, Staged]:
    """Stage every new file for each month it holds: first for the month its first lines hint at (the
    run's month when they hint at none), then for the other months its rows turn out to hold. Months
    come only from intervals between `floor` and `now` (the staged `rel` is null for any other)."""
    todo: dict[str, set[int]] = {}
    for i, hint in enumerate(plan.hints):
        todo.setdefault(hint or plan.month, set()).add(i)
    staged: dict[str, Staged] = {}
    done: set[tuple[str, int]] = set()
    while todo:
        m = min(todo)
        indexes = sorted(todo.pop(m))
        points = reg.month_points(registry, m)
        one = stage(
            m,
            plan.files,
            indexes,
            reg.device_days(registry, m, points),
            registry["device_id"].unique().to_list(),
            r.scratch / "staged" / m / str(len(done)),
            now,
            plan.heads,
            floor,
        )
        if m in staged:  # a month found again through a later file: its rows are in two folders
            staged[m].merge(one)
        else:
            staged[m] = one
        done |= {(m, i) for i in indexes}
        elsewhere = (
            one.scan()
            .filter(pl.col("rel").is_not_null() & (pl.col("rel") != 0))
            .select("file", "rel")
            .unique()
            .collect()
        )
        first = Month.parse(m).first_day
        for file, rel in elsewhere.iter_rows():
            other = month_label(add_months(first, int(rel)))
            if (other, file) not in done:
                todo.setdefault(other, set()).add(file)
        logger.info("%s: staged %d file(s)", m, len(indexes))
    return staged


def _month(
    r: runs.Run,
    con: duckdb.DuckDBPyConnection | None,
    m: str,
    staged: Staged | None,
    registry: pl.DataFrame,
    thresholds: vee.Thresholds,
    plan: ledger.Plan,
    moved: list[int],
    now: datetime,
    reads: pl.DataFrame | None,
    earlier: pl.DataFrame | None,
    derive: bool = True,
    keep_carry: bool = False,
) -> MonthState:
    """Month `m`'s state from its stored readings plus the rows this run read for it. `derive` False (a
    month after the run's, met in a file of the run's): its new readings are stored, and its findings,
    estimates, completeness and hourly values are left to its own run (a month barely begun would
    otherwise be published as one long gap)."""
    start, end = month_bounds(m)
    points = reg.month_points(registry, m)
    ranges = reg.point_day_ranges(registry, m, points)
    if staged is not None:
        # one read of the staged rows for both (collect_all shares the scan)
        cats, new = pl.collect_all(
            [
                staged.scan()
                .group_by("cat", "file")
                .agg(n=pl.len(), rel_min=pl.col("rel").min(), first_k=pl.col("k").min(), last_k=pl.col("k").max()),
                staged.scan().filter(pl.col("cat") == CATEGORY["good"]).select("k", "v", "file", "row"),
            ]
        )
        quarantined = _quarantine(staged, cats, m, plan)
    else:
        cats = pl.DataFrame(
            schema={
                "cat": pl.UInt8,
                "file": pl.UInt32,
                "n": pl.UInt32,
                "rel_min": pl.Int16,
                "first_k": pl.Int64,
                "last_k": pl.Int64,
            }
        )
        quarantined = _quarantine_schema(m)
        new = pl.DataFrame(schema={"k": pl.Int64, "v": pl.Float64, "file": pl.UInt32, "row": pl.UInt32})
    good_rows = new.height
    merged = stored.merge(new, stored.month_readings(con, m, start, points))
    del new
    readings = merged.current

    folder = r.scratch / "out" / m
    folder.mkdir(parents=True, exist_ok=True)
    # the month's new readings file is written while VEE works on the same rows
    readings_file = (
        r.in_background(_write_readings, merged.appended, points, m, plan, r.run_id, folder / "meter_readings.parquet")
        if merged.appended.height
        else None
    )
    writes: list[Write] = []
    if derive:
        stats = vee.series_stats(readings)
        rules = _validate(con, m, start, readings, stats, points, ranges, merged, thresholds, reads, registry, earlier)
        # the month's last weeks, kept only when this run computes the next month too
        carry = _carry(readings, rules, points, start, end, _history_days(thresholds)) if keep_carry else None
        kinds = estimation.month_day_kinds(start, end, thresholds)
        horizon = _horizon_ranges(ranges, start, now)  # never estimate, nor call a gap, what has not happened yet
        gapped = vee.gap_runs(readings, horizon, stats)["series"].unique()
        gap_rules, estimated = estimation.estimate(
            readings,
            horizon,
            thresholds,
            month_start=start,
            history=rules.history(readings, start, gapped),
            kinds=kinds,
            flagged=rules.flagged,
            stats=stats,
        )
        findings = _findings(m, points, rules.findings, gap_rules, rules.conflicts)
        completeness = aggregates.completeness(stats, points, m)
        hourly = _label_hours(aggregates.hourly(readings, estimated), points, m)
        check_frame = checks.month_frame(stats, completeness, hourly, points)
        hourly.write_parquet(folder / "meter_hourly.parquet", compression="zstd", compression_level=1)
        del hourly
        writes = [
            Write("meter_hourly", str(folder / "meter_hourly.parquet"), {"month": m}, ("month",), adopt=True),
            Write("meter_completeness", completeness, {"month": m}, ("month",)),
            Write("vee_findings", findings, {"month": m}, ("month",)),
            *_estimate_versions(con, r, m, start, points, estimated, readings),
        ]
    else:
        estimated = pl.DataFrame(schema={"k": pl.Int64, "v": pl.Float64, "method": pl.String})
        findings = _findings(
            m,
            points,
            *[pl.DataFrame(schema={"k": pl.Int64, "rule": pl.String, "detail": pl.String, "value": pl.Float64})] * 1,
            pl.DataFrame(
                schema={"k": pl.Int64, "rule": pl.String, "detail": pl.String, "value": pl.Float64, "last_i": pl.Int64}
            ),
            pl.DataFrame(schema={"k": pl.Int64, "detail": pl.String}),
        )
        completeness = aggregates.completeness(vee.series_stats(readings), points, m)
        check_frame = None
        carry = None
    del readings

    run_at = datetime.now()
    replaced = _superseded_rows(con, r, m, merged, points, plan, run_at)
    if readings_file is not None:
        path = readings_file.result()
        stored_keys = _stored_keys(merged.replaced, points, m)
        writes.insert(
            0,
            Write(
                "meter_readings",
                str(path),
                {"month": m},
                ("month",),
                adopt=True,
                append=True,
                delete_keys=stored_keys if stored_keys.height else None,
            ),
        )
    if replaced.height:
        writes.append(Write(stored.SUPERSEDED, replaced, {}, ("month",), append=True))

    counts = _counts(cats, m, good_rows, merged, quarantined, estimated.height, findings)
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
            month=pl.lit(m),
            rows="rows",
            good="good",
            first_interval=keys.interval_end(start, keys.interval_index(pl.col("first_k"))),
            last_interval=keys.interval_end(start, keys.interval_index(pl.col("last_k"))),
        )
    )
    if staged is not None:  # files read for this month that hold none of its rows still count as read
        read_here = pl.DataFrame(
            {"file": sorted(i for i in staged.indexes if i not in moved and i not in staged.unreadable)},
            schema={"file": pl.Int64},
        )
        per_file = per_file.join(read_here, on="file", how="full", coalesce=True).with_columns(
            month=pl.lit(m), rows=pl.col("rows").fill_null(0), good=pl.col("good").fill_null(0)
        )
        per_file = per_file.filter(
            (pl.col("rows") > 0)
            | ~pl.col("file").is_in(
                cats.filter(pl.col("cat") == CATEGORY["other_month"])["file"].cast(pl.Int64).to_list()
            )
        )
    logger.info("%s: %s", m, counts)
    return MonthState(m, writes, counts, completeness, findings, quarantined, per_file, check_frame, carry)


def _quarantine_schema(month: str) -> pl.DataFrame:
    raw = {f"raw_{c}": pl.String for c in COLUMNS}
    return pl.DataFrame(
        schema={"month": pl.String, "source_file": pl.String, "line": pl.Int64, **raw, "reason": pl.String}
    )


def _quarantine(staged: Staged, cats: pl.DataFrame, month: str, plan: ledger.Plan) -> pl.DataFrame:
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
        .select(pl.lit(month).alias("month"), pl.all())
        .sort("source_file", "line", nulls_last=True)
    )


def _point_label(points: pl.DataFrame, column: str = "point_id") -> pl.Series:
    return points.sort("point_idx")[column]


def _lookup(labels: pl.Series, index: pl.Expr) -> pl.Expr:
    """labels[index] as an Enum: a gather of small integers instead of copying strings per row."""
    return pl.lit(labels.cast(pl.Enum(labels.unique(maintain_order=True).to_list()))).gather(index)


def _register_quarantine(input_dir: Path, reads: pl.DataFrame | None, month: str) -> tuple[pl.DataFrame, list[str]]:
    """The register reads that cannot be used, as `quarantine` rows (read_at in raw_interval_end), and
    the file's name: its rows are replaced by each run, which reads the whole (small) file again."""
    if reads is None:
        return _quarantine_schema(month), []
    name = registers.find_input(input_dir, registers.STEM).name
    bad = registers.quarantined(reads)
    return bad.select(
        month=pl.coalesce((pl.col("read_at") - pl.duration(minutes=1)).dt.strftime("%Y-%m"), pl.lit(month)),
        source_file=pl.lit(name),
        line="line",
        raw_device_id="raw_device_id",
        raw_interval_end="raw_read_at",
        raw_channel="raw_channel",
        raw_value="raw_value",
        reason="reason",
    ).cast(_quarantine_schema(month).schema), [name]


@dataclass
class Validated:
    findings: pl.DataFrame  # (k, rule, detail, value) of every rule but gap and duplicate_conflict
    conflicts: pl.DataFrame  # (k, detail)
    before: pl.DataFrame  # vee's history shape: the real readings of the weeks before the month
    flagged: pl.DataFrame  # (k) the month's readings with a finding: no history for a rule or an estimate

    def history(self, readings: pl.DataFrame, start: datetime, series: pl.Series | None = None) -> pl.DataFrame:
        """The history frame (weeks before + the month, flagged marked), of `series` only when given:
        built for the few series with a gap to estimate, not for the whole market."""
        if series is not None:
            keep = pl.col("series").is_in(series.implode())
            readings = readings.filter(keys.series().is_in(series.implode()))
            return pl.concat([self.before.filter(keep), vee.history_from_month(readings, self.flagged, start)])
        return pl.concat([self.before, vee.history_from_month(readings, self.flagged, start)])


def _validate(
    con: duckdb.DuckDBPyConnection | None,
    m: str,
    start: datetime,
    readings: pl.DataFrame,
    stats: pl.DataFrame,
    points: pl.DataFrame,
    ranges: pl.DataFrame,
    merged: stored.Merged,
    t: vee.Thresholds,
    reads: pl.DataFrame | None,
    registry: pl.DataFrame,
    earlier: pl.DataFrame | None,
) -> Validated:
    """Every validation rule on the month's current readings (config/vee.toml). The history rules
    compare with the point's own real readings of the previous weeks, read from the warehouse."""
    maximum = vee.series_max(points["point_id"].to_list(), t)
    conflicts = _conflicts(merged, stored.month_superseded(con, m, start, points), readings)
    own = pl.concat(
        [
            vee.interval_findings(readings, maximum, t),
            vee.zero_consumption(readings, points, t),
            vee.reactive_without_active(readings, t),
        ]
    )
    if reads is not None:
        checked, skipped = registers.month_sum_check(reads, reg.device_days(registry, m, points), m, readings, t)
        own = pl.concat([own, checked.select(own.columns).cast(own.schema), _skipped_checks(skipped, start)])
    before = (
        _uncarry(earlier, points)
        if earlier is not None
        else stored.history_before(con, m, start, points, _history_days(t))
    )
    flagged = pl.concat([own.select("k"), conflicts.select("k")])
    compared = vee.vs_history_of(readings, before, flagged, start, t)
    # a reading far from its history is no model for an estimate either
    flagged = pl.concat([flagged, compared.select("k")])
    return Validated(pl.concat([own, compared.cast(own.schema)]), conflicts, before, flagged)


def _history_days(t: vee.Thresholds) -> int:
    return max(7 * t.history_weeks, t.like_day_window_days)


def _carry(
    readings: pl.DataFrame, rules: Validated, points: pl.DataFrame, start: datetime, end: datetime, days: int
) -> pl.DataFrame:
    """The month's own last `days` days of history, by point_id and channel (the next month numbers its
    points differently)."""
    first = int((end - timedelta(days=days) - start).total_seconds() // 60 // keys.INTERVAL_MINUTES)
    last_weeks = readings.filter(keys.interval_index() > first)
    history = vee.history_from_month(last_weeks, rules.flagged, start)
    point = keys.point_index(pl.col("series"))
    return history.select(
        point_id=_lookup(_point_label(points), point).cast(pl.String),
        ch=keys.channel_index(pl.col("series")),
        interval_end="interval_end",
        v="v",
        flagged="flagged",
    )


def _uncarry(carried: pl.DataFrame, points: pl.DataFrame) -> pl.DataFrame:
    return (
        carried.join(points.select("point_id", "point_idx"), on="point_id")
        .select(
            series=keys.series_of(pl.col("point_idx"), pl.col("ch")),
            interval_end="interval_end",
            v="v",
            flagged="flagged",
        )
        .cast(vee.HISTORY_SCHEMA)
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


def _horizon_ranges(ranges: pl.DataFrame, start: datetime, now: datetime) -> pl.DataFrame:
    """The points' active ranges cut at the last interval that has ended by `now`."""
    last = int((now - start).total_seconds() // 60 // keys.INTERVAL_MINUTES)
    return ranges.with_columns(last_i=pl.min_horizontal("last_i", pl.lit(last))).filter(
        pl.col("first_i") <= pl.col("last_i")
    )


def _estimate_versions(
    con: duckdb.DuckDBPyConnection | None,
    r: runs.Run,
    m: str,
    start: datetime,
    points: pl.DataFrame,
    estimated: pl.DataFrame,
    readings: pl.DataFrame,
) -> list[Write]:
    """`meter_estimates` keeps every version of every estimate: a new estimate (value, method, run, time)
    is added; the standing estimate it replaces, or that a real reading made unneeded, is kept with
    `superseded_by_run`, `superseded_at` and the reason. An unchanged estimate stays as it is."""
    columns = _series_columns(points, m)
    now = datetime.now()
    standing = stored.standing_estimates(con, m, start, points, ESTIMATES)
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
        month=pl.lit(m),
        **columns,
        value="v",
        method="method",
        run_id=pl.lit(r.run_id),
        estimated_at=pl.lit(now, pl.Datetime("us")),
        superseded_by_run=pl.lit(None, pl.String),
        superseded_at=pl.lit(None, pl.Datetime("us")),
        superseded_reason=pl.lit(None, pl.String),
    )
    writes = [Write(ESTIMATES, rows, {"month": m}, ("month",), append=True)]
    if gone.height:
        old = gone.select(
            month=pl.lit(m),
            **columns,
            value="v",
            method="method",
            run_id="run_id",
            estimated_at="estimated_at",
            superseded_by_run=pl.lit(r.run_id),
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
                {"month": m},
                ("month",),
                delete_keys=old.select("point_id", "channel", "interval_end", "run_id"),
            )
        )
    return writes


def _findings(
    month: str, points: pl.DataFrame, interval_rules: pl.DataFrame, gap_rules: pl.DataFrame, conflicts: pl.DataFrame
) -> pl.DataFrame:
    start, _ = month_bounds(month)
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
            month=pl.lit(month),
            interval_end=keys.interval_end(start, keys.interval_index()),
            channel=keys.channel_name(pl.col("ch")),
            rule="rule",
            detail="detail",
            value="value",
        )
        .sort("point_id", "channel", "interval_end", "rule")
    )


def _label_hours(hours: pl.DataFrame, points: pl.DataFrame, month: str) -> pl.DataFrame:
    start, _ = month_bounds(month)
    series = keys.hour_series()
    return hours.select(
        point_id=_lookup(_point_label(points), keys.point_index(series)),
        participant=_lookup(_point_label(points, "participant"), keys.point_index(series)),
        month=pl.lit(month, pl.Enum([month])),
        hour=pl.lit(start) + pl.duration(hours=keys.hour_of_month()),
        channel=_lookup(pl.Series(list(CHANNELS)), keys.channel_index(series)),
        value=pl.col("value"),
        quality=pl.col("quality"),
        real_intervals=pl.col("real").cast(pl.Int32),
        estimated_intervals=pl.col("est").cast(pl.Int32),
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


def _series_columns(points: pl.DataFrame, month: str) -> dict[str, pl.Expr]:
    """point_id, participant, channel and interval_end of a key `k` (see metering/keys.py)."""
    start, _ = month_bounds(month)
    point = keys.point_index(keys.series())
    return {
        "participant": _lookup(_point_label(points, "participant"), point).cast(pl.String),
        "point_id": _lookup(_point_label(points), point).cast(pl.String),
        "channel": _lookup(pl.Series(list(CHANNELS)), keys.channel_index(keys.series())).cast(pl.String),
        "interval_end": keys.interval_end(start, keys.interval_index()),
    }


def _stored_keys(replaced: pl.DataFrame, points: pl.DataFrame, month: str) -> pl.DataFrame:
    columns = _series_columns(points, month)
    return replaced.select(**{c: columns[c] for c in ("point_id", "channel", "interval_end")})


def _superseded_rows(
    con: duckdb.DuckDBPyConnection | None,
    r: runs.Run,
    month: str,
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
        "superseded_by_run": pl.lit(r.run_id),
        "superseded_at": pl.lit(at, pl.Datetime("us")),
    }
    lost = merged.lost.select(
        month=pl.lit(month),
        **columns,
        value="v",
        source_file=pl.lit(labels).gather(pl.col("file")),
        source_run=pl.lit(r.run_id),
        **by,
    )
    frames = [lost]
    if merged.replaced.height:
        keyed = merged.replaced.with_columns(**columns)
        origin = stored.provenance(con, month, keyed.select("point_id", "channel", "interval_end"))
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
                month=pl.lit(month),
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


def _write_readings(
    appended: pl.DataFrame, points: pl.DataFrame, month: str, plan: ledger.Plan, run_id: str, path: Path
) -> Path:
    """The run's new readings of the month as `meter_readings` rows, in one local Parquet file that the
    publish adopts as a data file of the month (a whole month is 24 million rows: written once, by polars)."""
    start, _ = month_bounds(month)
    point = keys.point_index(keys.series())
    # constant strings as one-value Enums: written as a dictionary of one string, not 24 million copies
    appended.lazy().select(
        month=pl.lit(month, pl.Enum([month])),
        participant=_lookup(_point_label(points, "participant"), point),
        point_id=_lookup(_point_label(points), point),
        channel=_lookup(pl.Series(list(CHANNELS)), keys.channel_index(keys.series())),
        interval_end=keys.interval_end(start, keys.interval_index()),
        value=pl.col("v"),
        source_file=_lookup(pl.Series(plan.labels, dtype=pl.String), pl.col("file")),
        run_id=pl.lit(run_id, pl.Enum([run_id])),
    ).sink_parquet(path, compression="zstd", compression_level=1)  # the lake's file: zstd, fast level
    return path


def _counts(
    cats: pl.DataFrame,
    month: str,
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


def _totals(states: list[MonthState], plan: ledger.Plan, moved: list[int], unreadable: int) -> dict[str, int]:
    names = (
        "month_rows",
        "ingested",
        "duplicates_dropped",
        "superseded",
        "replaced_stored",
        "quarantined",
        "blank_lines",
        "estimated_intervals",
        "findings",
    )
    totals = {k: sum(s.counts[k] for s in states) for k in names}
    totals["rows_read"] = totals.pop("month_rows")
    return {
        **totals,
        "months": len(states),
        "files_read": len(plan.files) - len(moved),
        "files_skipped": plan.skipped,
        "files_left_for_later_months": len(plan.deferred),
        "files_missing": len(plan.missing),
        "files_changed_while_read": len(moved),
        "unreadable_files": unreadable,
        "files_refused": len(plan.refused),
    }


def summarize(
    result: IngestResult, states: list[MonthState], plan: ledger.Plan, moved: list[int], manifest: Manifest
) -> str:
    c = result.counts
    lines = [
        f"meters {result.month} (run {result.run_id}): {c['files_read']:,} new file(s) read, "
        f"{c['files_skipped']:,} already ingested skipped"
        + (
            f", {c['files_left_for_later_months']:,} of later months left for their runs"
            if c["files_left_for_later_months"]
            else ""
        ),
        f"{c['rows_read']:,} rows read: {c['ingested']:,} ingested, {c['duplicates_dropped']:,} duplicates dropped, "
        f"{c['superseded'] + c['replaced_stored']:,} superseded by a later landing, {c['quarantined']:,} quarantined",
    ]
    if plan.missing:
        lines.append(
            f"{len(plan.missing):,} file(s) in the ledger are gone from the landing folder (their readings stay): "
            + ", ".join(plan.missing[:5])
            + (" ..." if len(plan.missing) > 5 else "")
        )
    if plan.refused:
        lines.append(
            f"{len(plan.refused):,} path(s) refused, not read (only regular files inside the landing folder are): "
            + ", ".join(plan.refused)
        )
    if moved:
        lines.append(
            f"{len(moved)} file(s) changed while being read, not ingested (read again by the next run): "
            + ", ".join(plan.labels[i] for i in moved[:5])
        )
    for state in states:
        lines += _month_lines(state, result.month)
    warnings = [r for r in result.validation if not r.success]
    lines.append(
        f"checks: {len(result.validation)} run, {len(warnings)} warning(s)"
        + "".join(f"\n  - {r.source}: {r.check} [{r.column}] {r.detail}" for r in warnings[:5])
    )
    lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest.timings_s.items()))
    return "\n".join(lines)


def _month_lines(state: MonthState, run_month: str) -> list[str]:
    completeness, findings, c = state.completeness, state.findings, state.counts
    total_expected = int(completeness["expected_intervals"].sum())
    total_received = int(completeness["received_intervals"].sum())
    # floored, so that 99.999% never reads as 100.00%
    pct = math.floor(10000.0 * total_received / total_expected) / 100 if total_expected else 0.0
    if state.month > run_month:
        return [
            f"{state.month}: {c['ingested']:,} new readings stored (found in files of earlier months); "
            f"its findings, estimates and completeness are computed by its own run"
        ]
    lines = [
        f"{state.month}{'' if state.month == run_month else ' (recomputed: new rows of it were read)'}: "
        f"{c['readings']:,} readings; completeness {total_received:,} of {total_expected:,} expected intervals "
        f"({pct:.2f}%); {c['estimated_intervals']:,} intervals estimated"
    ]
    by_channel = (
        completeness.group_by("channel")
        .agg(
            points=pl.len(),
            avg=pl.col("completeness_pct").mean(),
            incomplete=(pl.col("completeness_pct") < 100).sum(),
        )
        .sort("channel")
    )
    for row in by_channel.iter_rows(named=True):
        lines.append(
            f"  {row['channel']:<10} {row['points']} points, average {row['avg']:.2f}%, {row['incomplete']} below 100%"
        )
    worst = (
        completeness.group_by("point_id")
        .agg(pl.col("completeness_pct").min())
        .filter(pl.col("completeness_pct") < 100)
        .sort("completeness_pct", "point_id")
        .head(5)
    )
    if worst.height:
        lines.append(
            "  least complete: "
            + ", ".join(f"{r['point_id']} {r['completeness_pct']:.1f}%" for r in worst.iter_rows(named=True))
        )
    rules = findings.group_by("rule").agg(n=pl.len(), points=pl.col("point_id").n_unique()).sort("rule")
    lines.append(
        "  VEE findings: "
        + (", ".join(f"{r['rule']} {r['n']} ({r['points']} points)" for r in rules.iter_rows(named=True)) or "none")
    )
    return lines
