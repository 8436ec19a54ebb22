"""`mayorista backfill ...`: re-run a range of past periods without a scheduler, one after another in
this process, with a progress bar. The same functions the DAGs call, on the inputs the DAGs read:

    ncc11     quarters   <landing>/ncc11/<quarter>/   pipelines.ncc11.job.run
    expost    quarters   (the warehouse only)         pipelines.ncc11.expost.run
    meters    months     <landing>/smec/              pipelines.metering.job.ingest_month
    delivery  months     <landing>/smec/              pipelines.delivery.job.check_month

A period that fails does not stop the others (each publishes in its own transaction, so a failure
leaves that period's previous rows in place); the failures are listed at the end and the command exits
non-zero. Re-running a period replaces its rows, so a backfill can simply be run again."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import config
from pipelines.errors import InputError, MayoristaError
from pipelines.periods import Day, Month, Quarter

logger = logging.getLogger(__name__)

DOMAINS = ("ncc11", "expost", "meters", "delivery")
QUARTERLY = ("ncc11", "expost")


@dataclass
class BackfillResult:
    domain: str
    periods: list[str]
    succeeded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # period -> error message
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        unit = "quarter" if self.domain in QUARTERLY else "month"
        total = sum(self.seconds.values())
        lines = [
            f"backfill {self.domain}: {len(self.succeeded)} of {len(self.periods)} {unit}(s) published "
            f"in {total:.1f} s ({self.periods[0]} .. {self.periods[-1]})"
        ]
        if self.failed:
            lines.append(f"{len(self.failed)} failed (their previous rows are unchanged; fix and re-run them):")
            lines += [f"  {period}: {message}" for period, message in self.failed.items()]
        return "\n".join(lines)


def _month_of(text: str, what: str) -> Month:
    """`YYYY-MM`, or a day `YYYY-MM-DD` standing for its month."""
    if len(text or "") == 10:
        try:
            return Day.parse(text, what).month
        except InputError:
            raise InputError(f"{what} must be YYYY-MM or YYYY-MM-DD, got {text!r}") from None
    return Month.parse(text, what)


def period_range(domain: str, start: str, end: str) -> list[Month] | list[Quarter]:
    """The periods from `start` to `end` inclusive: quarters (every third month from `start`) for
    ncc11, months for meters and delivery. Days are accepted for meters and delivery and stand for
    their months: a daily meter run re-ingests its whole month, so each month needs one run."""
    if domain not in DOMAINS:
        raise InputError(f"unknown domain {domain!r}; one of {', '.join(DOMAINS)}")
    first, last = _month_of(start, "--from"), _month_of(end, "--to")
    if domain in QUARTERLY and (len(start) != 7 or len(end) != 7):
        raise InputError(f"{domain} backfills take quarters as YYYY-MM (the first month of each quarter)")
    if last < first:
        raise InputError(f"--to {end} is before --from {start}")
    span = (last.first_day.year - first.first_day.year) * 12 + last.first_day.month - first.first_day.month
    step = 3 if domain in QUARTERLY else 1
    if span % step:
        raise InputError(f"--to {end} is not a quarter start counted from --from {start} (quarters are 3 months)")
    months = [first.plus(k) for k in range(0, span + 1, step)]
    return [Quarter(m) for m in months] if domain in QUARTERLY else months


def input_dir(domain: str, period: str, landing: Path | None = None) -> Path:
    """Where the scheduled run of that period reads its inputs (as the DAGs do)."""
    return config.Settings.resolve(landing=landing).inputs(domain, period)


def _rss_gb() -> float:
    """This process's resident memory now (Linux /proc; 0 where it is not available)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / 1e9


def _job(domain: str, last: Month | Quarter) -> Callable[..., object]:
    if domain == "expost":
        from pipelines.ncc11 import expost

        # reads only the warehouse: the inputs folder the other domains take is not used
        return lambda quarter, _inputs, **kw: expost.run(quarter, **kw)
    if domain == "ncc11":
        from pipelines.ncc11 import job

        return job.run
    if domain == "meters":
        from pipelines.metering import job as metering

        # each month hands its last weeks to the next as history, and which files it left for the later months
        return metering.in_sequence(until=last if isinstance(last, Month) else None)
    from pipelines.delivery import job as delivery

    return delivery.check_month


def backfill(
    domain: str,
    start: str,
    end: str,
    *,
    landing: Path | None = None,
    warehouse: str | Path | None = None,
    lake_root: str | Path | None = None,
    progress: bool = True,
) -> BackfillResult:
    """Run every period of the range in order; never stops at a failed period."""
    from tqdm import tqdm

    values = period_range(domain, start, end)
    result = BackfillResult(domain, [value.label for value in values])
    run = _job(domain, values[-1])
    unit = "quarter" if domain in QUARTERLY else "month"
    bar = tqdm(values, desc=f"backfill {domain}", unit=unit, file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for value in bar:
        period = value.label
        bar.set_postfix_str(f"{period} failed={len(result.failed)}")
        began = time.perf_counter()
        unexpected: Exception | None = None
        try:
            inputs = None if domain == "expost" else input_dir(domain, period, landing)
            done = run(value, inputs, warehouse=warehouse, lake_root=lake_root)
            result.succeeded.append(period)
            rows = (getattr(done, "counts", None) or {}).get("rows_read")
            outcome = "ok" + (f", {rows:,} rows read" if rows is not None else "")
        except Exception as exc:  # noqa: BLE001 - one bad period must not stop the others; reported below
            kind = "" if isinstance(exc, MayoristaError) else f"{type(exc).__name__}: "
            result.failed[period] = kind + str(exc).strip().replace("\n", "\n    ")
            outcome = "FAILED"
            unexpected = None if isinstance(exc, MayoristaError) else exc
        result.seconds[period] = time.perf_counter() - began
        # plain lines for a log (the progress bar is for a terminal, off with --no-progress); the summary keeps
        # a failure's message only, so the log keeps the traceback of anything that is not a MayoristaError
        logger.info(
            "backfill %s %s: %s in %.1f s (%d of %d done)",
            domain,
            period,
            outcome,
            result.seconds[period],
            len(result.seconds),
            len(result.periods),
            exc_info=unexpected,
        )
        if progress:  # memory after each period: a backfill's must stay flat from one period to the next
            bar.write(
                f"{period} {outcome} ({result.seconds[period]:.1f} s; RSS {_rss_gb():.2f} GB, "
                f"peak so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB)",
                file=sys.stderr,
            )
    bar.close()
    return result
