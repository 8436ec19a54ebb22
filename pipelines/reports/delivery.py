"""The Direct@mm delivery letters: one per participant and month, HTML and PDF, under
`<lake>/reports/delivery/month=M/<participant>.{html,pdf}` (names percent-encoded).

The delivery run writes them right after its publish (`write_letters`, from what it published);
`render` re-creates them from the warehouse as of a run's snapshot:

    mayorista report delivery --month YYYY-MM [--as-of RUN_ID]"""

from __future__ import annotations

import logging
import os

import polars as pl
from upath import UPath

from pipelines import config, lake, periods
from pipelines.delivery import report
from pipelines.reports.document import ReportFiles, as_of_folder, write_many
from pipelines.reports.source import open_source

logger = logging.getLogger(__name__)

_TABLES = {
    "review": "vpn_change_review",
    "compliance": "delivery_compliance",
    "points": "delivery_points",
    "unreadable": "delivery_unreadable_rows",
}


def month_folder(root: str | os.PathLike[str] | UPath, month: str, as_of: str | None = None) -> UPath:
    return as_of_folder(lake.location(root), "delivery", as_of) / f"month={month}"


def write_letters(
    month: str,
    participants: list[str],
    folder: UPath,
    *,
    changes: pl.DataFrame | None,
    review: pl.DataFrame,
    compliance: pl.DataFrame,
    points: pl.DataFrame,
    unreadable: pl.DataFrame,
    run_id: str,
    snapshot_id: int | None,
    as_of_run: str | None = None,
) -> dict[str, ReportFiles]:
    """One letter per participant (HTML + PDF); files of earlier runs for participants no longer in
    the month (and the Markdown reports of earlier versions) are removed."""
    documents = {
        p: (
            report.render(
                p,
                month,
                changes=changes,
                review=review,
                compliance=compliance,
                points=points,
                unreadable=unreadable,
                run_id=run_id,
                snapshot_id=snapshot_id,
                as_of_run=as_of_run,
            ),
            folder / report.file_name(p),
        )
        for p in participants
    }
    written = write_many(documents)
    keep = {path.name for files in written.values() for path in (files.html, files.pdf) if path is not None}
    if folder.exists():
        for stale in folder.iterdir():
            if stale.is_file() and stale.name not in keep:
                stale.unlink()
    return written


def render(
    month: str,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
    as_of: str | None = None,
) -> dict[str, ReportFiles]:
    """The month's letters from the published tables (as of run `as_of`'s snapshot when given)."""
    periods.parse_month(month)
    with open_source(warehouse, as_of=as_of) as src:
        frames = {
            key: (src.frame("SELECT * FROM {t} WHERE month = ?", [month], t=table) if src.has(table) else None)
            for key, table in _TABLES.items()
        }
        run = src.run_row("delivery", month)
        snapshot = src.snapshot_id
    review = (
        frames["review"]
        if frames["review"] is not None
        else pl.DataFrame(
            schema={
                "change_id": pl.String,
                "participant": pl.String,
                "rule": pl.String,
                "ok": pl.Boolean,
                "detail": pl.String,
            }
        )
    )
    unreadable = (
        frames["unreadable"]
        if frames["unreadable"] is not None
        else pl.DataFrame(schema={"source": pl.String, "line": pl.Int64, "participant": pl.String, "reason": pl.String})
    )
    compliance = (
        frames["compliance"]
        if frames["compliance"] is not None
        else pl.DataFrame(schema={"change_id": pl.String, "deadline": pl.Date})
    )
    points = (
        frames["points"]
        if frames["points"] is not None
        else pl.DataFrame(schema={"change_id": pl.String, "status": pl.String})
    )
    participants = sorted(set(review["participant"].drop_nulls()) | set(unreadable["participant"].drop_nulls()))
    folder = month_folder(config.lake_root(lake_root), month, as_of)
    return write_letters(
        month,
        participants,
        folder,
        changes=None,
        review=review,
        compliance=compliance,
        points=points,
        unreadable=unreadable,
        run_id=run["run_id"] if run else "(no published run)",
        snapshot_id=snapshot,
        as_of_run=as_of,
    )
