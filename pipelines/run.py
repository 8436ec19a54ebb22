"""The one run skeleton every pipeline uses (NCC-11, meters, delivery; CLI and DAGs alike):

    with run.start("meters", month, ...) as r:   a unique run id (uuid) and the manifest
        with r.step("read"): ...                 timed, logged steps
        r.validation += checks                   GX results, recorded whether the run passes or not
        r.publish([Write(...), ...])             ONE warehouse transaction: the period's rows of every
                                                 table, validation_results and the run_manifests row
    reports are written after the commit, by the caller.

A run that fails anywhere (bad input, a failure of the machine, a bug) publishes nothing: the previous
snapshot stays as it was, and the run is recorded in `run_manifests` with status `failed` and the
reason. When the catalog is locked by another process past the wait (MAYORISTA_LOCK_WAIT_S, in all:
the failure record does not wait a second time), the failed run's row is kept in a pending folder
next to the catalog and recorded by the next run that writes there, once the lock is free. When the
warehouse itself is what failed (disk full, read-only), the error says so and nothing more can be
written. Working files live in a scratch folder that is removed at the end, and the next run removes
what a killed run left."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines import config, lake, quality, warehouse
from pipelines.errors import MayoristaError, environment_fault
from pipelines.manifest import Manifest
from pipelines.warehouse import Write, writes

logger = logging.getLogger(__name__)

PIPELINES = ("ncc11", "expost", "meters", "delivery")


def checkpoint(name: str) -> None:
    """A named point of a run where the fault-injection tests (tests/faults/) kill the process:
    `MAYORISTA_KILL_AT=<name>` makes it SIGKILL itself there, as a crash of the machine would. The
    points: `before_publish`, `mid_publish` (rows inserted, not committed), `after_publish` (committed,
    reports not yet written).

    `MAYORISTA_PAUSE_AT=<name>` with `MAYORISTA_PAUSE_FILE=<path>` makes it wait there instead: it writes
    `<path>.paused` (its process id) and goes on once `<path>` exists (after 10 minutes at the latest), so
    a test can do something else in between (run maintenance next to a publish that is about to commit,
    stop the catalog's PostgreSQL server in the middle of a publish)."""
    if os.environ.get("MAYORISTA_KILL_AT") == name:
        logger.warning("MAYORISTA_KILL_AT=%s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("MAYORISTA_PAUSE_AT") == name and os.environ.get("MAYORISTA_PAUSE_FILE"):
        resume = Path(os.environ["MAYORISTA_PAUSE_FILE"])
        logger.warning("MAYORISTA_PAUSE_AT=%s: paused until %s exists", name, resume)
        resume.with_name(resume.name + ".paused").write_text(str(os.getpid()))
        deadline = time.monotonic() + 600
        while not resume.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def new_run_id(pipeline: str, period: str) -> str:
    """Unique per run (a uuid), readable in listings."""
    return f"{pipeline}-{period}-{uuid.uuid4().hex}"


@dataclass
class Run:
    pipeline: str
    period: str
    run_id: str
    settings: config.Settings  # resolved once when the run starts; what the warehouse calls take
    manifest: Manifest
    validation: list[quality.CheckResult] = field(default_factory=list)
    snapshot_id: int | None = None
    _scratch: Path | None = None
    _background: list[Future] = field(default_factory=list)

    @property
    def warehouse(self) -> str:
        """The catalog (a path or URI): `settings.warehouse`."""
        return self.settings.warehouse

    @property
    def lake_root(self) -> str | os.PathLike[str]:
        """The lake root as given: `settings.lake`."""
        return self.settings.lake

    def step(self, name: str):  # noqa: ANN201 - a context manager
        return self.manifest.step(name)

    @property
    def scratch(self) -> Path:
        """This run's local working folder (created on first use, removed when the run ends)."""
        if self._scratch is None:
            path = config.scratch_root() / f"{lake.safe_name(self.run_id)}.{os.getpid()}"
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise environment_fault(exc, path, "create the run's scratch folder") or exc
            self._scratch = path
        return self._scratch

    def warm(self) -> None:
        """Load the warehouse's DuckDB extensions in the background (the publish needs them)."""
        warehouse.warm(self.settings)

    def in_background(self, fn: Callable[..., Any], *args: Any) -> Future:
        """`fn(*args)` on a thread of its own, next to the run's work (hashing input files, writing a
        Parquet file while VEE computes: hashlib and polars release the GIL, so the two cores both work).
        Its exception is raised by `.result()`; the run waits for it before it ends, so nothing is left
        writing into a scratch folder that is being removed."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.pipeline}-background")
        future = pool.submit(fn, *args)
        pool.shutdown(wait=False)
        self._background.append(future)
        return future

    def publish(self, tables: Sequence[Write], guard: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> int:
        """Publish every table of the run, its validation results and its manifest row in one
        transaction; returns the snapshot it created. `guard(con)` runs inside the transaction, before
        the manifest row: it raises to abandon the publish (e.g. another run took the same input)."""
        self.manifest.status = "published"
        checks = quality.results_frame(self.validation, run_id=self.run_id, pipeline=self.pipeline, period=self.period)
        pending = _Pending.load(self.warehouse)
        all_writes = [*tables, Write("validation_results", checks, {"run_id": self.run_id}), *pending.writes]
        for write in tables:
            if not isinstance(write.rows, str):
                self.manifest.outputs.setdefault(write.table, write.rows.height)

        def manifest_row(con: duckdb.DuckDBPyConnection) -> int:
            if guard is not None:
                guard(con)
            checkpoint("mid_publish")
            # the snapshot this commit will create: DuckLake numbers commits consecutively; checked after
            # the commit in case another writer's commit took that number first
            predicted = writes.next_snapshot(con)
            writes.insert(con, "run_manifests", self.manifest.row(predicted))
            pending.insert(con)
            writes.label_commit(con, f"{self.pipeline} {self.period}", self.run_id)
            return predicted

        checkpoint("before_publish")

        def confirm(con: duckdb.DuckDBPyConnection, predicted: int) -> None:
            self.snapshot_id = _confirm_snapshot(con, self.run_id, predicted)
            pending.done()

        with self.step("publish"):
            warehouse.publish(all_writes, self.settings, then=manifest_row, after=confirm)
        logger.info(
            "%s %s published as snapshot %s (run %s)", self.pipeline, self.period, self.snapshot_id, self.run_id
        )
        checkpoint("after_publish")
        return self.snapshot_id


def _confirm_snapshot(con: duckdb.DuckDBPyConnection, run_id: str, predicted: int) -> int:
    """The snapshot the commit really created (found by the run id it carries); when another writer's
    commit took the predicted number, the manifest row is corrected in a commit of its own."""
    snapshot = writes.committed_snapshot(con, run_id) or predicted
    if snapshot != predicted:
        writes.update(con, "run_manifests", {"snapshot_id": snapshot}, {"run_id": run_id})
    return snapshot


@dataclass
class _Pending:
    """Failed runs not yet in run_manifests: the catalog was locked when they ended. Each is two
    Parquet files (its manifest row, its validation results) in a folder next to a SQLite catalog
    (under the scratch root for PostgreSQL), recorded by the next write to that warehouse."""

    folder: Path
    rows: list[tuple[Path, pl.DataFrame, pl.DataFrame | None]] = field(default_factory=list)

    @staticmethod
    def folder_of(catalog: str) -> Path:
        if warehouse.is_postgres(catalog):
            key = hashlib.sha256(warehouse.describe(catalog).encode()).hexdigest()[:16]
            return config.scratch_root() / "pending-runs" / key
        path = Path(catalog).resolve()
        return path.parent / f".{path.name}.pending-runs"

    @classmethod
    def load(cls, catalog: str) -> _Pending:
        pending = cls(cls.folder_of(catalog))
        try:
            files = sorted(pending.folder.glob("*.manifest.parquet"))
            for path in files:
                checks = path.with_name(path.name.replace(".manifest.", ".checks."))
                pending.rows.append((path, pl.read_parquet(path), pl.read_parquet(checks) if checks.exists() else None))
        except (OSError, pl.exceptions.PolarsError) as exc:  # never stop a run for a record of another one
            logger.warning("could not read the failed runs waiting in %s: %s", pending.folder, exc)
            pending.rows = []
        return pending

    @property
    def writes(self) -> list[Write]:
        return [
            Write("validation_results", checks, {"run_id": row["run_id"][0]})
            for _, row, checks in self.rows
            if checks is not None and checks.height
        ]

    def insert(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert the manifest rows not already recorded (a run that recorded them and died before
        removing the files must not record them twice)."""
        for _, row, _checks in self.rows:
            writes.insert(con, "run_manifests", row, new_by="run_id")

    def done(self) -> None:
        for path, row, _checks in self.rows:
            path.with_name(path.name.replace(".manifest.", ".checks.")).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            logger.info("recorded the failed run %s, which had waited for the catalog", row["run_id"][0])

    @classmethod
    def keep(cls, r: Run, checks: pl.DataFrame) -> Path:
        """Keep a failed run's record until the catalog can be written (atomically: manifest last)."""
        folder = cls.folder_of(r.warehouse)
        folder.mkdir(parents=True, exist_ok=True)
        name = lake.safe_name(r.run_id)
        for kind, frame in (("checks", checks), ("manifest", r.manifest.row(None))):
            partial = folder / f".{name}.{kind}.parquet.partial"
            frame.write_parquet(partial)
            os.replace(partial, folder / f"{name}.{kind}.parquet")
        return folder


def _record_failure(r: Run, exc: BaseException) -> None:
    r.manifest.status = "failed"
    r.manifest.reason = (str(exc).strip() or type(exc).__name__)[:4000]
    if not isinstance(exc, MayoristaError):
        r.manifest.reason += "\n" + "".join(traceback.format_exception(exc))[-4000:]
    checks = quality.results_frame(r.validation, run_id=r.run_id, pipeline=r.pipeline, period=r.period)
    pending = _Pending.load(r.warehouse)
    # a run that already waited the whole MAYORISTA_LOCK_WAIT_S for the catalog does not wait again
    budget = warehouse.lock_budget(0 if _locked(exc) else None)
    try:
        with budget:
            warehouse.publish(
                [Write("validation_results", checks, {"run_id": r.run_id}), *pending.writes],
                r.settings,
                then=lambda con: (writes.insert(con, "run_manifests", r.manifest.row(None)), pending.insert(con)),
                after=lambda con, _: pending.done(),
            )
    except warehouse.CatalogLocked:
        try:
            folder = _Pending.keep(r, checks)
        except OSError as third:
            logger.warning("could not record the failed run %s anywhere: %s", r.run_id, third)
            return
        logger.warning(
            "the catalog is still locked: the failed run %s is kept in %s and will be recorded in run_manifests "
            "by the next run that writes to this warehouse",
            r.run_id,
            folder,
        )
    except Exception as second:  # noqa: BLE001 - the run's own error is what must reach the user
        logger.warning("could not record the failed run %s in run_manifests: %s", r.run_id, str(second).splitlines()[0])


def _locked(exc: BaseException | None) -> bool:
    """Whether the run failed because the catalog stayed locked (it has waited already)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, warehouse.CatalogLocked):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def clean_dead_scratch() -> None:
    """Remove scratch folders of runs whose process is gone (killed runs)."""
    root = config.scratch_root()
    if not root.is_dir():
        return
    for path in root.iterdir():
        pid = path.name.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            logger.info("removing %s, left by a run that died", path)
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def start(
    pipeline: str,
    period: str,
    *,
    run_id: str | None = None,
    warehouse: warehouse.Where = None,
    lake_root: str | os.PathLike[str] | None = None,
    warm: bool = True,
) -> Iterator[Run]:
    """Run a pipeline's period: see the module docstring. `warehouse` and `lake_root` (a command's
    --warehouse and --lake, or settings already resolved) are resolved here, once for the whole run,
    and carried by it (`r.settings`). `warm`: load the warehouse's DuckDB extensions
    in the background from the start. Loading holds the GIL for about a second, so a pipeline whose
    first steps are Python work (metering's plan: a thousand small file opens) passes False and calls
    `r.warm()` when its native work starts."""
    if pipeline not in PIPELINES:
        raise ValueError(pipeline)
    # pyarrow is imported here, in the caller's thread, before the run starts any thread of its own. Its
    # import creates for a moment a class (Cython's pyarrow.lib.MapScalar) that is already listed among
    # collections.abc.Mapping's subclasses but answers ABC checks as collections.abc.Sequence (CPython
    # gh-116093). A thread asking isinstance(x, Mapping) in that moment made str a Mapping for the rest
    # of the process: in CI an NCC-11 run whose GX import (GX imports pyarrow) ran beside its checks
    # failed in polars with "'str' object has no attribute 'keys'" (reproduced: 3 processes in 200).
    import pyarrow  # noqa: F401

    config.lock_wait_s()  # a bad MAYORISTA_LOCK_WAIT_S stops a scheduled run too, before any work
    run_id = run_id or new_run_id(pipeline, period)
    r = Run(pipeline, period, run_id, _settings(warehouse, lake_root), Manifest(pipeline, period, run_id))
    clean_dead_scratch()
    if warm:
        r.warm()
    logger.info("%s %s: run %s started", pipeline, period, run_id)
    try:
        yield r
    except BaseException as exc:
        fault = None if isinstance(exc, MayoristaError) else _environment(exc, r)
        _record_failure(r, fault or exc)
        logger.error(
            "%s %s: run %s failed: %s",
            pipeline,
            period,
            run_id,
            str(fault or exc).splitlines()[0] if str(fault or exc) else type(exc).__name__,
        )
        if fault:
            raise fault from exc
        raise
    finally:
        wait(r._background)
        if r._scratch is not None:
            shutil.rmtree(r._scratch, ignore_errors=True)


def _settings(where: warehouse.Where, lake_root: str | os.PathLike[str] | None) -> config.Settings:
    return warehouse.settings(where, lake_root)


def _environment(exc: BaseException, r: Run) -> MayoristaError | None:
    """A failure of the machine anywhere in a run (an OSError from a write, DuckDB's IO errors, the
    PostgreSQL catalog's server gone in the middle of a read)."""
    lost = warehouse.catalog_lost(exc, r.settings)
    if lost is not None:
        return lost
    if isinstance(exc, (OSError, duckdb.IOException)) or "No space left" in str(exc):
        where = getattr(exc, "filename", None) or (r._scratch or r.warehouse)
        return environment_fault(exc, where, f"run {r.pipeline} {r.period}")
    return None
