"""Where a report's figures come from: the warehouse's snapshot-pinned reader, which lives in
pipelines.warehouse (`Reader`, `open_reader`). Kept under its old names for the report modules."""

from __future__ import annotations

from pipelines.warehouse.reader import Reader as Source
from pipelines.warehouse.reader import open_reader as open_source

__all__ = ["Source", "open_source"]
