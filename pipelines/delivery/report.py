"""The per-participant Markdown report: each VPN change of the month, each rule's verdict with its
evidence, and the points delivered late or never with their deadline and how they were estimated.
It is what staff attach to the letter to the participant, so it states facts and dates, not codes.
(Rendering text for a handful of changes: plain Python over rows is the readable choice here.)"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from pipelines import lake

_RULE_TITLES = {
    "notice": "Request at least 5 business days before the proposed date (rule 3)",
    "metering_period": "Not within the first 7 business days of the month (rules 4 and 5)",
    "approvals": "Approved beforehand by Medición and Tecnología (rule 2)",
    "delivery": "All metering points delivered via Direct@mm within 2 calendar days of notification (NCC-14 14.10)",
}
_STATUS = {"on_time": "on time", "late": "LATE", "missing": "MISSING", "not_judged": "not judged",
           "not_required": "not required (not counted)", "unknown_point": "unknown point (not counted)"}


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_text(v) for v in row) + " |" for row in rows]
    return lines


def render(participant: str, month: str, *, changes: pl.DataFrame, review: pl.DataFrame, compliance: pl.DataFrame,
           points: pl.DataFrame, unreadable: pl.DataFrame, run_id: str) -> str:
    """One participant's report. `changes` are the month's changes with their calendar dates."""
    mine = changes.filter(pl.col("participant") == participant).sort("change_id")
    out = [f"# VPN changes and Direct@mm delivery: {participant}, {month}", "",
           f"Run `{run_id}`. Rules: administrator's connectivity guide, section 2.2.2; NCC-14 numeral 14.10. "
           "Business days exclude weekends, Guatemala's public holidays and the administrator's non-working days.", ""]
    verdicts = review.filter(pl.col("participant") == participant)
    failed = verdicts.filter(~pl.col("ok"))["change_id"].unique().len()
    out += [f"**{mine.height} change(s) reviewed, {failed} with at least one rule not met.**", ""]
    for change in mine.iter_rows(named=True):
        cid = change["change_id"]
        out += [f"## Change {cid} (VPN {_text(change['vpn_id'])})", ""]
        out += _table(["letter", "proposed", "effective", "Medición approval", "Tecnología approval", "executed", "notified"],
                      [[change["_raw_letter_date"] or None, change["_raw_proposed_date"] or None, change["effective_date"],
                        change["_raw_medicion_approved_on"] or None, change["_raw_tecnologia_approved_on"] or None,
                        change["_raw_executed_on"] or None, change["_raw_notified_on"] or None]])
        out += [""]
        rules = verdicts.filter(pl.col("change_id") == cid)
        out += _table(["rule", "verdict", "evidence"],
                      [[_RULE_TITLES.get(r["rule"], r["rule"]), "met" if r["ok"] else "**NOT MET**", r["detail"]]
                       for r in rules.iter_rows(named=True)])
        out += [""]
        summary = compliance.filter(pl.col("change_id") == cid)
        if summary.height:
            row = summary.row(0, named=True)
            if row["deadline"] is not None:
                out += [f"Supply month {row['supply_month']}; notified {_text(row['notified_on'])}; deadline: end of "
                        f"{_text(row['deadline'])}. {row['required_points']} points required: {row['on_time_points']} "
                        f"on time, {row['late_points']} late, {row['missing_points']} missing.", ""]
        of_change = points.filter(pl.col("change_id") == cid)
        behind = of_change.filter(pl.col("status").is_in(["late", "missing", "not_judged"]))
        if behind.height:
            out += ["Points delivered late or not at all (the administrator estimates them, NCC-14 14.10):", ""]
            out += _table(["point", "kind", "status", "first received", "deliveries", "deadline (end of day)", "estimation"],
                          [[p["point_id"], p["kind"], _STATUS.get(p["status"], p["status"]), p["received_at"],
                            p["deliveries"], p["deadline"], p["estimation"]] for p in behind.iter_rows(named=True)])
            out += [""]
        extra = of_change.filter(pl.col("status").is_in(["not_required", "unknown_point"]))
        if extra.height:
            out += ["Deliveries reported but not counted:", ""]
            out += _table(["point", "status", "first received", "deliveries"],
                          [[p["point_id"], _STATUS.get(p["status"], p["status"]), p["received_at"], p["deliveries"]]
                           for p in extra.iter_rows(named=True)])
            out += [""]
    rows = unreadable.filter(pl.col("participant") == participant)
    if rows.height:
        out += ["## Input rows that could not be used", ""]
        out += _table(["file", "line", "reason"], [[r["source"], r["line"], r["reason"]] for r in rows.iter_rows(named=True)])
        out += [""]
    return "\n".join(out)


def file_name(participant: str) -> str:
    """Percent-encoded: distinct participants never share a file and no name leaves the folder."""
    return lake.file_name(participant) + ".md"
