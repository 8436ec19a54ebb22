"""How one run's work overlaps on a two-core machine: what starts in the background and when.

The domain flow of a job calls one hook per phase (`after_plan`, `after_read`, `between_months`,
`before_checks`) and never reasons about threads; the reasons, measured, are here:

- The warehouse's DuckDB extensions load after the plan, not during it: loading holds the GIL, which
  the plan's thousand small file opens need; the parse that follows runs in polars without it.
- Great Expectations' import (several seconds of Python, see /work/shared/stack-notes.md) starts after
  the parse, not before: during the plan and the parse, their thousands of small file opens and sniffs
  each waited for the GIL behind it, and the parse took 4 s longer; the months' polars and numpy work
  leaves it room. Its suites run after `before_checks` joins it.
- Hashing input files and writing a month's Parquet file run on threads of their own (`background`):
  hashlib and polars release the GIL, so both cores work.
- One month's frames are collected before the next month's are built (`between_months`): a month is
  tens of millions of rows, two at once do not fit next to the stored ones.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pipelines import quality
from pipelines import run as runs

logger = logging.getLogger(__name__)


class Overlap:
    """The performance scheduling of one run (`pipelines.run.Run`): one hook per phase of the job."""

    def __init__(self, r: runs.Run, suites: tuple[str, ...] = ()) -> None:
        self._run = r
        self._suites = suites
        self._gx: threading.Thread | None = None

    def after_plan(self) -> None:
        """The plan's small file opens are done: load the warehouse's extensions (for the publish)."""
        self._run.warm()

    def background(self, fn: Callable[..., Any], *args: Any) -> Future:
        """`fn(*args)` next to the run's work; `.result()` waits for it (and raises its exception)."""
        return self._run.in_background(fn, *args)

    def after_read(self) -> None:
        """The input files are parsed: import GX and prepare the run's suites while the months compute."""
        if self._gx is None and self._suites:
            self._gx = quality.warm(*self._suites)

    def between_months(self) -> None:
        """One month's frames are gone before the next month's are built."""
        gc.collect()

    def before_checks(self) -> None:
        """The suites run now: wait for GX's import."""
        if self._gx is not None:
            self._gx.join()

    def restart(self) -> None:
        """A run that plans again: what the last attempt computed is released."""
        gc.collect()
