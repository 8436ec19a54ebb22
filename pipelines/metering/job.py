"""`mayorista meters ingest --month M`: the new readings files, and the month's state, end to end.

    registry (GX)
    -> plan: which landed files are new (ledger.py)
    -> stage: one streaming pass over each new file, per month it holds (readings.stage)
    -> for each month that got new rows, and for M: compute it (month.py: stored readings plus the new
       rows -> VEE findings, short-gap estimates, completeness, hourly values, shaped by warehouse_rows.py)
    -> GX on the months' aggregates
    -> publish: one warehouse transaction with the months' tables and the ledger (pipelines.run)
    -> the result and its summary (result.py)

A run's cost is its new files plus one month of stored readings per month it touches, whatever the
history. Files whose first interval lies after M are left for their month's run (recorded as
`deferred`: not opened again before then); a late resend of an earlier month is read and that month
recomputed in the same transaction.

A row whose timestamp does not parse, or lies before the floor (`earliest_interval_end`,
config/vee.toml) or after the time of the run, has no month of its own: it is quarantined with its line
in the month of the earliest valid interval in its file (a file in which no timestamp parses is
reported as unreadable).

Two runs at once (e.g. a backfill of March next to the daily run of April): the one that publishes
second finds, inside its publish, that the other recorded some of the same files, or a month it
publishes, in the ledger meanwhile. It publishes nothing of what it computed, plans again against the
new ledger (the other run's files are now known and skipped) and computes again: both land, and a run
of the same month twice ends with the second finding nothing new ("already ingested by run X")."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
import os
import shutil
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines import business_days, config, landing_zone, quality
from pipelines import run as runs
from pipelines import warehouse as store
from pipelines.errors import InputError, MayoristaError, environment_fault
from pipelines.manifest import Manifest
from pipelines.metering import checks, ledger, registers, stored, vee
from pipelines.metering import registry as reg
from pipelines.metering import warehouse_rows as rows
from pipelines.metering.landing import earliest_interval_end
from pipelines.metering.month import Carry, MonthInputs, MonthState, compute, history_days
from pipelines.metering.readings import Accepted, Staged, stage
from pipelines.metering.result import IngestResult, summarize, totals
from pipelines.periods import GUATEMALA, Month
from pipelines.scheduling import Overlap
from pipelines.warehouse import Write

logger = logging.getLogger(__name__)

PIPELINE = "meters"
ESTIMATES = rows.ESTIMATES
REPLANS = 5  # a run that raced another plans again at most this many times
SUITES = ("metering_points", "metering_month")
WAREHOUSE_TABLES = (
    "meter_readings",
    stored.SUPERSEDED,
    ESTIMATES,
    "meter_completeness",
    "meter_hourly",
    "vee_findings",
    "quarantine",
    "metering_points",
    ledger.TABLE,
)


@dataclass(frozen=True)
class RunInputs:
    """What every attempt of a run reads alike: the landing folder and its registry, the thresholds,
    and which interval_end values are accepted (from the floor to the time of the run)."""

    month: Month
    input_dir: Path  # the reference files (metering_points...): the landing folder, or their copies in scratch
    registry: pl.DataFrame
    thresholds: vee.Thresholds
    accepted: Accepted
    readings: Path | landing_zone.RemoteReadings | None = None  # where the plan lists readings (None: input_dir)
    history: Carry | None = None  # the month before's last weeks, from the run that published it
    keep_history: bool = False  # hand this month's last weeks to the next run (`IngestResult.history`)
    ahead: ledger.Ahead | None = None  # the run is one month of a backfill going on to `ahead.until`


def ingest_month(
    month: Month | str,
    input_dir: Path,
    *,
    warehouse: str | Path | None = None,
    lake_root: str | Path | None = None,
    run_id: str | None = None,
    now: datetime | None = None,
    history: Carry | None = None,
    keep_history: bool = False,
    ahead: ledger.Ahead | None = None,
) -> IngestResult:
    """Ingest what is new under `input_dir` for `month` (and earlier months) and publish the month's
    state. `month` comes parsed from the edge (CLI, DAG, backfill; a label from the Python API is
    parsed here). `now` (local Guatemala time, default the clock) is when the run reads: readings of
    intervals that had not ended by then are quarantined. `keep_history`: the result carries the
    month's last weeks (`IngestResult.history`); handed to the next month's run as `history`, they are
    its history rules' weeks before, unless anything was published in between (see `in_sequence`).
    `ahead`: the run is one month of a backfill that goes on to `ahead.until` (ledger.Ahead); the
    result's `ahead` is what the next month's run is given."""
    month = Month.of(month)
    input_dir = landing_zone.location(input_dir)  # a folder, or an s3:// landing zone (pipelines/landing_zone.py)
    if not landing_zone.is_remote(input_dir) and not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} does not exist")
    now = now or datetime.now(GUATEMALA).replace(tzinfo=None)
    with runs.start(PIPELINE, month.label, run_id=run_id, warehouse=warehouse, lake_root=lake_root, warm=False) as r:
        # the first holiday look-up loads the holidays package's country data and translations (about
        # 0.4 CPU-s), in the month step's serial Python part: done now, next to the reading, instead
        # (later look-ups take a millisecond; a failure here is raised again by the real look-up)
        r.in_background(business_days.public_holidays, month.start.year, month.start.year)
        pace = Overlap(r, SUITES)
        local = landing_zone.local_inputs(input_dir, r.scratch)
        remote = landing_zone.RemoteReadings(input_dir, r.scratch) if landing_zone.is_remote(input_dir) else None
        land = RunInputs(
            month,
            local,
            _registry(r, local),
            vee.load_thresholds(),
            Accepted(now, earliest_interval_end()),
            readings=remote,
            history=history,
            keep_history=keep_history,
            ahead=ahead,
        )
        result = _attempts(r, pace, land)
        if remote is not None:
            logger.info(
                "%s: fetched %d landed object(s), %d bytes, from %s",
                month,
                remote.fetched,
                remote.fetched_bytes,
                remote,
            )
    _raise_on_skipped_files(result)
    return result


def _registry(r: runs.Run, input_dir: Path) -> pl.DataFrame:
    with r.step("registry"):
        registry = reg.load_registry(input_dir)
        if reg.has_problems(registry):  # fail before reading millions of rows; GX writes the report
            r.validation = reg.validate(registry)
            quality.raise_on_errors(r.validation)
        r.manifest.add_input(input_dir / _registry_name(input_dir), registry.height)
    return registry


def _attempts(r: runs.Run, pace: Overlap, land: RunInputs) -> IngestResult:
    """The run, planned again (at most REPLANS times) when another run published first."""
    raced: list[str] = []
    inputs = len(r.manifest.inputs)
    for attempt in range(REPLANS + 1):
        src = store.open_reader(r.settings, missing_ok=True, publishing=True)  # as this attempt plans against it
        try:
            result = _run(r, pace, land, src)
            break
        except Raced as exc:
            raced += [run for run in exc.runs if run not in raced]
            if attempt == REPLANS:
                raise MayoristaError(
                    f"other runs kept publishing the same files or months while this one ran "
                    f"({', '.join(raced[:3])}); nothing of this run was published after {REPLANS + 1} "
                    "attempts: run it again"
                ) from None
            logger.warning("%s: %s; planning again against the new ledger", land.month, exc)
            _reset(r, inputs)
            pace.restart()
        finally:
            src.close()  # closed by _run before its publish already (an open reader blocks a SQLite catalog's writer)
    if raced:
        result.raced = raced
        result.summary += (
            f"\nplanned again after run(s) {', '.join(raced)} published some of the same files or months "
            "first: what they ingested was skipped here (already ingested by them)"
        )
    return result


def _raise_on_skipped_files(result: IngestResult) -> None:
    """Unreadable files and refused paths fail the run after the others were published."""
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


def _registry_name(input_dir: Path) -> str:
    return "metering_points.parquet" if (input_dir / "metering_points.parquet").exists() else "metering_points.csv"


def _run(r: runs.Run, pace: Overlap, land: RunInputs, src: store.Reader) -> IngestResult:
    month, manifest = land.month, r.manifest
    seen_at = datetime.now()
    with manifest.step("plan"):
        listed = land.readings or land.input_dir
        plan = ledger.plan(
            listed, month, ledger.load(src), now=land.accepted.now, floor=land.accepted.floor, ahead=land.ahead
        )
        if not plan.files and plan.skipped == 0 and not plan.deferred and not plan.refused:
            where = landing_zone.join(str(listed) if land.readings else land.input_dir, "readings")
            raise InputError(f"no readings files (*.csv or *.parquet) under {where}")
    pace.after_plan()
    hashes = pace.background(ledger.hashes, plan)  # for the ledger and the manifest

    with manifest.step("read_readings"):
        staged = _stage_all(r, plan, land)
        reads = registers.read(land.input_dir)  # optional cumulative register reads, for sum_check (small: every run)
        if reads is not None:
            reads = registers.validate(reads, land.registry)
    pace.after_read()
    moved = ledger.changed_while_read(plan, list(range(len(plan.files))))
    for one in staged.values():
        one.excluded.update(moved)
    base = MonthInputs(
        month=month,
        staged=None,
        reader=src,
        registry=land.registry,
        thresholds=land.thresholds,
        plan=plan,
        moved=moved,
        now=land.accepted.now,
        reads=reads,
        run_id=r.run_id,
        out=r.scratch / "out",
        background=pace.background,
        earlier=_handed(land, src),
    )
    states = _months(r, pace, base, staged, land.keep_history)
    src.close()  # before the publish: an open reader would block the writer of a SQLite catalog

    unreadable = {i: (m, why) for m, one in staged.items() for i, why in one.unreadable.items() if i not in moved}
    per_file = pl.concat([s.ledger for s in states]) if states else pl.DataFrame()
    ledger_rows = ledger.rows(plan, per_file, unreadable, hashes.result(), r.run_id, seen_at)
    _record_inputs(manifest, plan, moved, unreadable, hashes.result())
    pace.before_checks()
    with manifest.step("checks"):
        validation = [
            c for s in states if s.check_frame is not None for c in checks.check_month_frame(s.check_frame, s.month)
        ]
    counts = totals(states, plan, moved, len(unreadable))
    manifest.counts.update(counts)
    manifest.periods = {s.month.label: s.counts for s in states if s.month != month}
    r.validation = reg.validate(land.registry) + validation
    quality.raise_on_errors(r.validation)  # an error-level check stops the run before anything is published

    writes = _writes(land, plan, moved, states, reads, ledger_rows)
    with _publish_lock(r.warehouse):
        r.publish(writes, guard=lambda c: _not_raced(c, ledger_rows, plan, [s.month for s in states], r.run_id))
    result = IngestResult(
        month.label,
        r.run_id,
        "",
        counts,
        {plan.labels[i]: why for i, (_, why) in unreadable.items()},
        dict(plan.refused),
        validation=r.validation,
        snapshot_id=r.snapshot_id,
        months={s.month.label: s.counts for s in states},
    )
    result.summary = summarize(result, month, states, plan, moved, manifest)
    own = next((s for s in states if s.month == month), None)
    if land.ahead is not None:
        result.ahead = ledger.Ahead(land.ahead.until, plan.ahead)
    if land.keep_history and own is not None and own.carry is not None and r.snapshot_id is not None:
        result.history = dataclasses.replace(own.carry, snapshot_id=r.snapshot_id)
    return result


def _handed(land: RunInputs, src: store.Reader) -> Carry | None:
    """The last weeks the run before handed over, when the warehouse this run plans against is the one
    that run published (nothing else published since) and the history reaches as far back."""
    h = land.history
    if h is None or h.snapshot_id is None or h.snapshot_id != src.snapshot_id:
        return None
    if isinstance(h.rows, Path) and not h.rows.is_file():
        return None
    if h.days != history_days(land.thresholds):
        return None
    logger.info("%s: the history rules' weeks before: %s's last weeks, handed over by its run", land.month, h.month)
    return h


def in_sequence(until: Month | None = None) -> Callable[..., IngestResult]:
    """`ingest_month` for consecutive months in one process (a backfill): each run hands its month's
    last weeks to the next, which then does not read them back from the warehouse (2.5-2.9 s for a month
    of 2,000 points, 21 M rows). Between runs they wait in a local Parquet file, not in memory: held
    there, they raised the backfill's resident memory after each month from 0.43 to 1.15 GB and its
    peak from 2.5 to 3.4 GB. A month that fails, or whose weeks cannot be written, hands nothing on (the
    next month reads the warehouse).

    `until`: the backfill's last month. A file whose first lines place it in a later month of the
    backfill is then left for that month's run without being read through (ledger.Ahead): January of a
    year's backfill no longer reads the 10.7 GB of the later months' files to find where each begins
    (13-25 s of its plan, and their sha256 beside its month step). The runs hand on which files they
    left; a month that fails hands on what it was handed."""
    # named like a run's scratch folder (`<name>.<pid>`): swept by a later run if this process is killed;
    # one per sequence, so two sequences in one process never share a file
    folder = config.scratch_root() / f"backfill-history-{uuid.uuid4().hex[:12]}.{os.getpid()}"
    last: Carry | None = None
    ahead = ledger.Ahead(until) if until is not None else None

    def one(month: Month | str, input_dir: Path, **kw: Any) -> IngestResult:
        nonlocal last, ahead
        handed, last = last, None
        try:
            result = ingest_month(month, input_dir, history=handed, keep_history=True, ahead=ahead, **kw)
        finally:
            if handed is not None and isinstance(handed.rows, Path):
                handed.rows.unlink(missing_ok=True)
        if result.history is not None:
            last, result.history = _spill(result.history, folder), None
        if result.ahead is not None:
            ahead, result.ahead = result.ahead, None
        return result

    weakref.finalize(one, shutil.rmtree, folder, True)
    return one


def _spill(carry: Carry, folder: Path) -> Carry | None:
    path = folder / f"{carry.month.label}.parquet"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        carry.rows.write_parquet(path, compression="lz4")
    except (OSError, pl.exceptions.PolarsError) as exc:  # a full disk is polars' ComputeError: the month stands
        logger.warning(
            "%s: its last weeks were not kept for the next month's run (%s): it reads them back", carry.month, exc
        )
        path.unlink(missing_ok=True)
        return None
    return dataclasses.replace(carry, rows=path)


def _months(
    r: runs.Run, pace: Overlap, base: MonthInputs, staged: dict[Month, Staged], keep_history: bool = False
) -> list[MonthState]:
    """Compute every month the run touches, in order: those it read rows of, and its own. A month after
    the run's only stores its readings; the end of a month is the history of the next one."""
    months = sorted(set(staged) | {base.month})
    # rows of an earlier month in a file an earlier run of the backfill left unread (ledger.Ahead): the
    # months since were computed without them (their history rules, estimates): computed again, so the
    # backfill ends as if the file had been read through at the start
    early = [m for m, one in staged.items() if m < base.month and base.plan.left_before.intersection(one.indexes)]
    between = min(early, default=base.month)
    while between < base.month:
        months.append(between)
        between = between.next
    months = sorted(set(months))
    states: list[MonthState] = []
    for m in months:
        # the end of the month before, when this run computed it (the history the warehouse does not hold
        # yet), or when the run before handed it over (`base.earlier`: what the warehouse holds, kept)
        computed = states[-1] if states and states[-1].month == m.previous else None
        handed = base.earlier if base.earlier is not None and base.earlier.month == m.previous else None
        earlier = computed.carry if computed is not None else handed
        with r.step(f"month {m}" if m != base.month else "month"):
            inputs = dataclasses.replace(
                base,
                month=m,
                staged=staged.get(m),
                out=base.out / m.label,
                earlier=earlier,
                derive=m <= base.month,
                keep_carry=m != months[-1] or (keep_history and m == base.month),
            )
            states.append(compute(inputs))
        if m != months[-1]:
            pace.between_months()
    return states


def _record_inputs(
    manifest: Manifest,
    plan: ledger.Plan,
    moved: list[int],
    unreadable: dict[int, tuple[Month, str]],
    hashes: dict[int | str, str],
) -> None:
    for i in range(len(plan.files)):
        if i in moved:
            continue
        manifest.inputs.append(
            {
                "file": plan.labels[i],
                "sha256": hashes[i],
                "bytes": plan.sizes[i],
                **({"unreadable": unreadable[i][1]} if i in unreadable else {}),
            }
        )


def _writes(
    land: RunInputs,
    plan: ledger.Plan,
    moved: list[int],
    states: list[MonthState],
    reads: pl.DataFrame | None,
    ledger_rows: pl.DataFrame,
) -> list[Write]:
    """The run's writes: each month's tables, then the quarantine, the registry and the ledger."""
    read = [plan.labels[i] for i in range(len(plan.files)) if i not in moved]
    labels = pl.DataFrame({"path": read}, schema={"path": pl.String})
    rejected, register_file = rows.register_quarantine(land.input_dir, reads, land.month)
    registry_name = _registry_name(land.input_dir)
    return [w for s in states for w in s.writes] + [
        Write(
            "quarantine",
            pl.concat([*[s.quarantine for s in states], rejected]),
            {},
            delete_keys=pl.concat([labels, pl.DataFrame({"path": register_file}, schema={"path": pl.String})]).rename(
                {"path": "source_file"}
            ),
        ),
        Write(
            "metering_points",
            land.registry.with_columns(source_file=pl.lit(registry_name)),
            {"source_file": registry_name},
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
        Write(ledger.TABLE, ledger_rows.clear(), {"status": "deferred"}, delete_keys=ledger.undeferred(plan, read)),
        Write(ledger.TABLE, ledger_rows, {"status": "unreadable"}, delete_keys=labels),
    ]


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
    con: duckdb.DuckDBPyConnection, ledger_rows: pl.DataFrame, plan: ledger.Plan, months: list[Month], run_id: str
) -> None:
    """Inside the publish (`con`: its transaction): no run unknown when this one planned has recorded,
    since, one of the file versions this run read (their readings would be stored twice) or a month this
    run publishes (its derived tables would be replaced by ones computed without that run's rows).
    Raises `Raced`: the run plans again against the ledger as it now is."""
    src = store.Reader.over(con)
    if not src.has(ledger.TABLE):
        return
    others = src.frame(
        """SELECT DISTINCT l.run_id FROM {l} l
           WHERE l.status IN ('ingested', 'quarantined')
             AND l.run_id NOT IN (SELECT run_id FROM _known)
             AND (EXISTS (SELECT 1 FROM _read r WHERE r.path = l.path AND r.sha256 = l.sha256)
                  OR l.month IN (SELECT month FROM _months))
           ORDER BY 1""",
        frames={
            "_read": ledger_rows.filter(pl.col("status").is_in(ledger.READ)).select("path", "sha256").unique(),
            "_known": pl.DataFrame({"run_id": sorted(plan.runs | {run_id})}, schema={"run_id": pl.String}),
            "_months": pl.DataFrame({"month": [m.label for m in months]}, schema={"month": pl.String}),
        },
        l=ledger.TABLE,
    )
    if others.height:
        raise Raced(others["run_id"].to_list())


def _stage_all(r: runs.Run, plan: ledger.Plan, land: RunInputs) -> dict[Month, Staged]:
    """Stage every new file for each month it holds: first for the month its first lines hint at (the
    run's month when they hint at none), then for the other months its rows turn out to hold. Months
    come only from accepted intervals (the staged `rel` is null for any other)."""
    todo: dict[Month, set[int]] = {}
    for i, hint in enumerate(plan.hints):
        todo.setdefault(hint or plan.month, set()).add(i)
    staged: dict[Month, Staged] = {}
    done: set[tuple[Month, int]] = set()
    devices = land.registry["device_id"].unique().to_list()
    while todo:
        m = min(todo)
        indexes = sorted(todo.pop(m))
        points = reg.month_points(land.registry, m)
        one = stage(
            m,
            plan.files,
            indexes,
            reg.device_days(land.registry, m, points),
            devices,
            r.scratch / "staged" / m.label / str(len(done)),
            land.accepted,
            plan.heads,
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
        for file, rel in elsewhere.iter_rows():
            other = m.plus(int(rel))
            if (other, file) not in done:
                todo.setdefault(other, set()).add(file)
        logger.info("%s: staged %d file(s)", m, len(indexes))
    return staged
