"""Great Expectations, run from our own code on in-memory frames.

Suites live as JSON under `expectations/` (one file per suite, loaded with `gx.ExpectationSuite(**json)`).
Each expectation's `severity` decides what a failure means: `critical` stops the run, `warning` is
recorded. Suites may take run-time values (the quarter's first hour, its number of hours...) through
GX's `{"$PARAMETER": name}` placeholders. GX cannot read polars frames, so the frame is handed over
as pandas; GX is imported lazily because importing it costs seconds the other commands should not pay."""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import threading
import time
import types
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import polars as pl

from pipelines import config
from pipelines.errors import ValidationFailed

logger = logging.getLogger(__name__)
# GX logs some 150 INFO lines as it starts ("Skipping registering function ..."): in an Airflow task log
# they would bury the run's own lines. Its warnings and errors still show.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

_SEVERITY = {"critical": "error", "warning": "warning", "info": "info"}


@dataclass(frozen=True)
class CheckResult:
    source: str  # file (or derived view) the check ran on, as a person would look for it
    check: str  # GX expectation type
    column: str
    severity: str  # error | warning | info
    success: bool
    unexpected_count: int | None
    detail: str  # observed value or example offending values


class _Deferred(types.ModuleType):
    """A module that is imported for real on first use of any of its attributes."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)  # names already bound to this stand-in now see the real module
        return getattr(real, attr)


def _defer(*names: str) -> None:
    """Let `names` be imported without running them until something uses them.

    GX imports every expectation it ships at start-up; its KL-divergence expectation alone imports
    scipy.stats and altair, about 40 % of the import's CPU (measured 9.3 s -> 5.6 s under load), on every
    run and every Airflow task. None of our suites uses that expectation; should one, the real modules are
    imported on the first attribute it touches."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        stand_in = _Deferred(name)
        stand_in.__spec__ = spec
        stand_in.__file__ = spec.origin
        if spec.submodule_search_locations is not None:
            stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = stand_in


def _gx() -> Any:
    _defer("scipy.stats", "altair")
    # GX loads its SQL integration when SQLAlchemy is installed (it is: Airflow needs it), about a quarter
    # of what is left of its import. Our suites validate in-memory frames, so GX starts as where SQLAlchemy
    # is absent, a case its compatibility layer handles. A process that already has SQLAlchemy (an Airflow
    # task) keeps it; the CLI imports it nowhere else (the None entry lasts only while GX is imported).
    blocked = "sqlalchemy" not in sys.modules
    if blocked:
        sys.modules["sqlalchemy"] = None  # type: ignore[assignment]  # `import sqlalchemy` raises ImportError
    try:
        import great_expectations
    finally:
        if blocked and sys.modules.get("sqlalchemy", 0) is None:
            del sys.modules["sqlalchemy"]
    return great_expectations


@lru_cache(maxsize=1)
def _context() -> Any:
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # that module sets its own logger to INFO when imported ("Created temporary directory ..." on every
    # run, even at the CLI's WARNING): back to inheriting great_expectations' level
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _adapt(spec: dict[str, Any], rename: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The suite with its columns renamed (a named variant, so both can live in one context)."""
    if not rename:
        return spec
    names = dict(rename)
    kept = []
    for exp in spec["expectations"]:
        kwargs = dict(exp["kwargs"])
        if "column" in kwargs:
            kwargs["column"] = names.get(kwargs["column"], kwargs["column"])
        if "column_list" in kwargs:
            kwargs["column_list"] = [names.get(c, c) for c in kwargs["column_list"]]
        kept.append({**exp, "kwargs": kwargs})
    variant = ",".join(f"{a}->{b}" for a, b in rename)
    return {**spec, "name": f"{spec['name']}[{variant}]", "expectations": kept}


_SETUP = threading.Lock()  # the warm-up thread and the caller may both ask for a suite


def _prepared(suite_name: str, rename: tuple[tuple[str, str], ...]) -> Any:
    with _SETUP:
        return _validation(suite_name, rename)


@cache
def _validation(suite_name: str, rename: tuple[tuple[str, str], ...]) -> Any:
    gx = _gx()
    context = _context()
    with open(config.expectations_dir() / f"{suite_name}.json", encoding="utf-8") as fh:
        spec = _adapt(json.load(fh), rename)
    suite = context.suites.add(gx.ExpectationSuite(**spec))
    batch = context.data_sources.add_pandas(spec["name"]).add_dataframe_asset(spec["name"])
    definition = batch.add_batch_definition_whole_dataframe("whole")
    return context.validation_definitions.add(gx.ValidationDefinition(name=spec["name"], data=definition, suite=suite))


def warm(*suite_names: str) -> threading.Thread:
    """Import GX and prepare the named suites in a background thread; join it before `run_suite`.

    The import costs seconds of mostly Python work; callers start this first so it overlaps their
    (native, GIL-free) reads of the input files."""

    def load() -> None:
        # While this thread runs Python without pause, a thread that released the GIL for I/O waits up to
        # the switch interval (5 ms) to get it back: a run that opens and hashes a thousand files next to
        # this import spent seconds waiting so. A shorter interval while the import lasts avoids that.
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, 0.0005))
        try:
            for name in suite_names:
                try:
                    _prepared(name, ())
                except Exception as exc:  # the caller's own call reports the problem, in its thread
                    logger.debug("preparing suite %s in the background failed: %s", name, exc)
        finally:
            sys.setswitchinterval(interval)

    thread = threading.Thread(target=load, name="gx-warm", daemon=True)
    thread.start()
    return thread


def run_suite(
    suite_name: str,
    source: str,
    frame: pl.DataFrame,
    params: dict[str, Any] | None = None,
    *,
    rename: dict[str, str] | None = None,
    id_columns: list[str] | None = None,
) -> list[CheckResult]:
    """Validate `frame` against `expectations/<suite_name>.json`; one CheckResult per expectation.

    `rename` maps suite column names to the frame's (e.g. NCC-11 block mode keys by `block`, not `hour`);
    `id_columns` are shown next to each offending value so a report names the row (its key)."""
    started = time.perf_counter()
    validation = _prepared(suite_name, tuple(sorted((rename or {}).items())))
    batch = {"dataframe": frame.to_pandas()}
    # Pass/fail only is about twice as fast; the details are computed again only when something failed.
    outcome = validation.run(
        batch_parameters=batch, expectation_parameters=params or {}, result_format={"result_format": "BOOLEAN_ONLY"}
    )
    if not outcome.success:
        outcome = validation.run(
            batch_parameters=batch,
            expectation_parameters=params or {},
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": 5,
                **({"unexpected_index_column_names": id_columns} if id_columns else {}),
            },
        )
    results = [_result(source, r) for r in outcome.results]
    failed = [r for r in results if not r.success]
    logger.info(
        "suite %s on %s: %d row(s), %d check(s), %d failed, %.2f s",
        suite_name,
        source,
        frame.height,
        len(results),
        len(failed),
        time.perf_counter() - started,
    )
    # INFO, not WARNING: the run's summary and validation_results already carry them, and an error-level
    # failure stops the run with the full list (raise_on_errors); the log shows where they came from
    for r in failed:
        logger.info("  %s failed: %s [%s] (%s): %s", source, r.check, r.column, r.severity, r.detail)
    return results


def _result(source: str, r: Any) -> CheckResult:
    cfg = r.expectation_config
    kwargs = cfg.kwargs
    column = kwargs.get("column") or ",".join(kwargs.get("column_list") or [])
    result = r.result or {}
    if r.exception_info and r.exception_info.get("raised_exception"):
        # GX reports a crashed expectation as a failure; say why instead of a bare False
        detail = f"check could not run: {r.exception_info.get('exception_message')}"
        success = False
    else:
        success = bool(r.success)
        rows = result.get("partial_unexpected_index_list") or []
        if rows and isinstance(rows[0], dict) and not success:
            detail = "e.g. " + "; ".join(_short(v) for v in result["partial_unexpected_index_list"])
        elif "partial_unexpected_list" in result and not success:
            detail = "e.g. " + "; ".join(_short(v) for v in result["partial_unexpected_list"])
        elif "observed_value" in result:
            detail = f"observed {_short(result['observed_value'])}"
        else:
            detail = ""
    return CheckResult(
        source=source,
        check=cfg.type,
        column=column,
        severity=_SEVERITY.get(str(getattr(cfg.severity, "value", cfg.severity)), "error"),
        success=success,
        unexpected_count=result.get("unexpected_count", 0 if success else None),
        detail=detail,
    )


def _short(value: Any) -> str:
    if isinstance(value, dict):  # an offending row: its key columns and the value, without nulls
        value = {k: (v.item() if hasattr(v, "item") else v) for k, v in value.items() if v is not None and v == v}
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def raise_on_errors(results: list[CheckResult]) -> None:
    failed = [r for r in results if not r.success and r.severity == "error"]
    if failed:
        lines = [f"data-quality check failed ({len(failed)} error-level check(s)); nothing was published:"]
        for r in failed:
            count = f"{r.unexpected_count} unexpected, " if r.unexpected_count else ""
            lines.append(f"  - {r.source}: {r.check} [{r.column}]: {count}{r.detail}")
        raise ValidationFailed("\n".join(lines))


def results_frame(results: list[CheckResult], *, run_id: str, pipeline: str, period: str) -> pl.DataFrame:
    """The `validation_results` rows for one run."""
    rows = [asdict(r) for r in results]
    checked_at = datetime.now().replace(microsecond=0)
    return (
        pl.DataFrame(
            rows,
            schema={
                "source": pl.String,
                "check": pl.String,
                "column": pl.String,
                "severity": pl.String,
                "success": pl.Boolean,
                "unexpected_count": pl.Int64,
                "detail": pl.String,
            },
        )
        .with_columns(
            run_id=pl.lit(run_id), pipeline=pl.lit(pipeline), period=pl.lit(period), checked_at=pl.lit(checked_at)
        )
        .select(
            "run_id",
            "pipeline",
            "period",
            "source",
            "check",
            "column",
            "severity",
            "success",
            "unexpected_count",
            "detail",
            "checked_at",
        )
    )
