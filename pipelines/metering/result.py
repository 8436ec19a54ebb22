"""What a metering run reports: its result (counts, per month, the files it could not read or refused)
and the summary printed at the end of `mayorista meters ingest`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from pipelines.manifest import Manifest
from pipelines.metering import ledger
from pipelines.metering.month import Carry, MonthState
from pipelines.periods import Month


@dataclass
class IngestResult:
    """A run's outcome; `month` and the keys of `months` are labels (`YYYY-MM`), as stored."""

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
    history: Carry | None = None  # the month's last weeks for the next run (`ingest_month(keep_history=True)`)
    ahead: ledger.Ahead | None = None  # for the backfill's next run: the files left for its later months


def totals(states: list[MonthState], plan: ledger.Plan, moved: list[int], unreadable: int) -> dict[str, int]:
    """The run's counts: the months' counts summed, and what happened to the landed files."""
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
    summed = {k: sum(s.counts[k] for s in states) for k in names}
    summed["rows_read"] = summed.pop("month_rows")
    return {
        **summed,
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
    result: IngestResult,
    month: Month,
    states: list[MonthState],
    plan: ledger.Plan,
    moved: list[int],
    manifest: Manifest,
) -> str:
    """The run's summary: files, rows, each month's completeness and findings, checks, timings."""
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
        lines += _month_lines(state, month)
    warnings = [r for r in result.validation if not r.success]
    lines.append(
        f"checks: {len(result.validation)} run, {len(warnings)} warning(s)"
        + "".join(f"\n  - {r.source}: {r.check} [{r.column}] {r.detail}" for r in warnings[:5])
    )
    lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in manifest.timings_s.items()))
    return "\n".join(lines)


def _month_lines(state: MonthState, run_month: Month) -> list[str]:
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
