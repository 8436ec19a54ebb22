"""A backfill's next month staged ahead, beside the current month's run.

A month of a backfill uses both cores in its staging (the CSV pass) but not in its month step (VEE,
merge, hourly values: 1.6-1.7 cores, with serial stretches) nor between its steps. So while month M
runs, `job.in_sequence` stages month M+1's files in a thread of its own: the files that M-1's plan
left for M+1 (ledger.Ahead), as M+1's run would stage them. M+1's run takes those staged rows instead
of reading the files again only when its plan reads exactly those files, unchanged (path, size and
modification time, in the same landing order), with the same registry and floor, and no row was put
aside as later than the time of the prestaging (a later run would accept it). Otherwise, and after any
failure of the prestaging, the run stages for itself: prestaging can cost time, never change a result."""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.metering import ledger
from pipelines.metering import registry as reg
from pipelines.metering.landing import CsvHead
from pipelines.metering.readings import Accepted, Staged, stage
from pipelines.periods import GUATEMALA, Month

logger = logging.getLogger(__name__)

AFTER_NOW = 2048  # the staged flag of a row later than the time of the run (readings._classify)


def stage_month(
    month: Month,
    files: list[Path],
    indexes: list[int],
    registry: pl.DataFrame,
    accepted: Accepted,
    out: Path,
    heads: dict[int, CsvHead] | None = None,
) -> Staged:
    """`readings.stage` of `files[i]` (i in `indexes`) for `month`, with the registry's points of the month."""
    points = reg.month_points(registry, month)
    devices = registry["device_id"].unique().to_list()
    return stage(month, files, indexes, reg.device_days(registry, month, points), devices, out, accepted, heads)


@dataclass(frozen=True)
class Prestaged:
    """`month`'s files staged ahead: `labels`, `sizes` and `mtimes` (ns) as listed then, in landing order,
    staged against `registry` and `accepted`."""

    month: Month
    labels: list[str]
    sizes: list[int]
    mtimes: list[int]
    registry: pl.DataFrame
    accepted: Accepted
    staged: Staged


def prestage(month: Month, ahead: ledger.Ahead, landing: Path, floor: datetime, out: Path) -> Prestaged | None:
    """Stage the files the backfill left for `month` (`ahead`) as its run would, if nothing lands
    meanwhile, into `out`; None when it left none. Runs in a thread beside the month before's run."""
    mine = sorted((mtime, label, size) for label, (size, mtime, m) in ahead.files.items() if m == month)
    if not mine:
        return None
    registry = reg.load_registry(landing)
    if reg.has_problems(registry):  # the run reports it
        return None
    accepted = Accepted(datetime.now(GUATEMALA).replace(tzinfo=None), floor)
    files = [landing / label for _, label, _ in mine]
    staged = stage_month(month, files, list(range(len(files))), registry, accepted, out)
    logger.info("%s: staged %d file(s) ahead, beside the month before's run", month, len(files))
    return Prestaged(
        month,
        [label for _, label, _ in mine],
        [size for _, _, size in mine],
        [mtime for mtime, _, _ in mine],
        registry,
        accepted,
        staged,
    )


def usable(
    ready: Future[Prestaged | None] | None,
    plan: ledger.Plan,
    registry: pl.DataFrame,
    accepted: Accepted,
) -> Staged | None:
    """The prestaged rows of the run's month, when they are what the run would stage itself (see the
    module docstring): every file the plan reads, for the run's month, with `plan.files` as their files."""
    if ready is None:
        return None
    try:
        done = ready.result()
    except Exception as exc:  # noqa: BLE001 - a full disk, a file gone: the run stages for itself and meets it
        logger.warning("%s: staging ahead failed (%s); staging the month's files now", plan.month, exc)
        return None
    if done is None:
        return None
    same = (
        done.month == plan.month
        and done.labels == plan.labels
        and done.sizes == plan.sizes
        and done.mtimes == plan.mtimes
        and all(hint in (None, plan.month) for hint in plan.hints)
        and done.accepted.floor == accepted.floor
        and done.accepted.now <= accepted.now
        and done.registry.equals(registry)
        and not _after(done.staged)
    )
    if not same:
        logger.info(
            "%s: the files staged ahead are not the run's (something landed or changed): staging now", plan.month
        )
        return None
    one = done.staged  # a copy: an attempt that raced another run may come back for it
    return dataclasses.replace(
        one,
        files=plan.files,
        indexes=list(one.indexes),
        fast_files=set(one.fast_files),
        unreadable=dict(one.unreadable),
        excluded=set(),
        more=list(one.more),
    )


def _after(staged: Staged) -> bool:
    """Whether any row was put aside as later than the time of the staging."""
    return bool(staged.scan_not_good().select(((pl.col("flags") & AFTER_NOW) != 0).any()).collect().item())
