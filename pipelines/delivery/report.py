"""The per-participant letter about the month's VPN changes and Direct@mm deliveries: each change,
each rule's verdict with its evidence, and the points delivered late or never with their deadline and
how they were estimated. Staff send it to the participant, so it states facts and dates, not codes.

One self-contained HTML page (pipelines/reports/templates/letter.html.j2; printed to PDF next to it by
pipelines.reports.delivery). `changes` (the month's changes with their calendar dates) is known only
to the run itself; a letter re-rendered from the warehouse (`mayorista report delivery --as-of`) has
every verdict and its evidence, which quotes those dates, but not the table of dates."""

from __future__ import annotations

import logging

import polars as pl

from pipelines import lake
from pipelines.reports.document import MISSING, render_html

logger = logging.getLogger(__name__)

RULE_TITLES = {
    "notice": "Request at least 5 business days before the proposed date (rule 3)",
    "metering_period": "Not within the first 7 business days of the month (rules 4 and 5)",
    "approvals": "Approved beforehand by Medición and Tecnología (rule 2)",
    "interrogation": "Every metering point 100 % complete from real readings in the supply month (rule 6(a))",
    "delivery": "All metering points delivered via Direct@mm within 2 calendar days of notification (NCC-14 14.10)",
}
STATUS = {
    "on_time": "on time",
    "late": "LATE",
    "missing": "MISSING",
    "not_judged": "not judged",
    "not_required": "not required (not counted)",
    "unknown_point": "unknown point (not counted)",
}
_DATES = [
    ("letter", "letter_date"),
    ("proposed", "proposed_date"),
    ("effective", None),
    ("Medición approval", "medicion_approved_on"),
    ("Tecnología approval", "tecnologia_approved_on"),
    ("executed", "executed_on"),
    ("notified", "notified_on"),
]


def _dates(change: dict) -> list[tuple[str, object]]:
    return [
        (label, change.get("effective_date") if column is None else (change.get(f"_raw_{column}") or None))
        for label, column in _DATES
    ]


def render(
    participant: str,
    month: str,
    *,
    changes: pl.DataFrame | None,
    review: pl.DataFrame,
    compliance: pl.DataFrame,
    points: pl.DataFrame,
    unreadable: pl.DataFrame,
    run_id: str,
    snapshot_id: int | None = None,
    as_of_run: str | None = None,
) -> str:
    """One participant's letter as HTML. `changes`: the month's changes with their calendar dates
    (None when rendered from the warehouse)."""
    verdicts = review.filter(pl.col("participant") == participant)
    ids = sorted(
        set(verdicts["change_id"].to_list())
        | (
            set(changes.filter(pl.col("participant") == participant)["change_id"].to_list())
            if changes is not None
            else set()
        )
    )
    known = (
        {c["change_id"]: c for c in changes.filter(pl.col("participant") == participant).to_dicts()}
        if changes is not None
        else {}
    )
    items = []
    for cid in ids:
        change = known.get(cid, {})
        summary = compliance.filter(pl.col("change_id") == cid).to_dicts()
        of_change = points.filter(pl.col("change_id") == cid)
        items.append(
            {
                "change_id": cid,
                "vpn_id": change.get("vpn_id"),
                "dates": _dates(change) if change else None,
                "rules": [
                    {
                        "title": RULE_TITLES.get(r["rule"], r["rule"]),
                        "rule": r["rule"],
                        "ok": r["ok"],
                        "detail": r["detail"],
                    }
                    for r in verdicts.filter(pl.col("change_id") == cid).to_dicts()
                ],
                "compliance": summary[0] if summary and summary[0]["deadline"] is not None else None,
                "behind": [
                    {**p, "status_text": STATUS.get(p["status"], p["status"])}
                    for p in of_change.filter(pl.col("status").is_in(["late", "missing", "not_judged"])).to_dicts()
                ],
                "extra": [
                    {**p, "status_text": STATUS.get(p["status"], p["status"])}
                    for p in of_change.filter(pl.col("status").is_in(["not_required", "unknown_point"])).to_dicts()
                ],
            }
        )
    failed = verdicts.filter(~pl.col("ok"))["change_id"].n_unique()
    return render_html(
        "letter.html.j2",
        title=f"VPN changes and Direct@mm delivery: {participant}, {month}",
        kicker="Administrador del Mercado Mayorista · NCC-14 · letter to the participant",
        subtitle=f"Supply month {month} · run {run_id}",
        participant=participant,
        month=month,
        changes=items,
        failed=failed,
        unreadable=unreadable.filter(pl.col("participant") == participant).to_dicts(),
        run_id=run_id,
        snapshot_id=snapshot_id if snapshot_id is not None else MISSING,
        as_of_run=as_of_run,
        missing=MISSING,
    )


def file_name(participant: str) -> str:
    """The letter's file stem, percent-encoded: distinct participants never share a file and no name
    leaves the folder (`.html` and `.pdf` are added when written)."""
    return lake.file_name(participant)
