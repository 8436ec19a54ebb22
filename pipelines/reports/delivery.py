"""The Direct@mm delivery letters: one per participant and month, HTML and PDF, under
`<lake>/reports/delivery/month=M/<participant>.{html,pdf}` (names percent-encoded; `.en.` before the
extension in English).

One entry, `render(Month, snapshot=..., as_of=..., lang=...)`, read from the warehouse as of one
snapshot: the delivery run calls it right after its publish with the snapshot it published, and

    mayorista report delivery --month YYYY-MM [--as-of RUN_ID] [--lang en]

calls the same, so a re-rendering is what the run wrote (its dates table and VPN ids included: the
run publishes the month's changes with their dates in `vpn_changes`).

The letter is a letter: the administrator as sender (config/letters.toml), a letter date (the day
the run published the review), a reference number stable per participant and month, the participant
as addressee, each change with its dates and each rule's verdict (pipelines/reports/verdicts.py)
with its evidence, the points delivered late or never with their estimation, and a signatory block.
The run id is in the provenance footer, not in the body."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tomllib
from functools import lru_cache
from typing import Any

import polars as pl
from upath import UPath

from pipelines import config, lake
from pipelines.errors import InputError, MayoristaError
from pipelines.periods import Month
from pipelines.reports import evidence, verdicts
from pipelines.reports.document import MISSING, ReportFiles, as_of_folder, render_html, write_many
from pipelines.reports.i18n import Words, words
from pipelines.reports.source import Source, open_source

logger = logging.getLogger(__name__)

# the rules in the order the review applies them (keys of rule.<name> in the string catalogues)
RULES = ("notice", "metering_period", "approvals", "interrogation", "delivery")
# the dates table of a change: (catalogue key, column of vpn_changes)
DATES = (
    ("letter", "letter_date"),
    ("proposed", "proposed_date"),
    ("effective", "effective_date"),
    ("medicion", "medicion_approved_on"),
    ("tecnologia", "tecnologia_approved_on"),
    ("executed", "executed_on"),
    ("notified", "notified_on"),
)
BEHIND = ("late", "missing", "not_judged")
EXTRA = ("not_required", "unknown_point")
LETTERS_CONFIG = "letters.toml"


@lru_cache(maxsize=4)
def _letters_config(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"the letters' configuration {path} is missing (sender and signatory)") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"the letters' configuration {path} is not valid TOML: {exc}") from None


def letters_config() -> dict[str, Any]:
    """config/letters.toml: sender, signatory, reference prefix (checked: every field present)."""
    path = config.config_dir() / LETTERS_CONFIG
    conf = _letters_config(str(path))
    for section, keys in {
        "sender": ("organisation", "unit", "address", "city"),
        "signatory": ("name", "title"),
        "reference": ("prefix",),
    }.items():
        for key in keys:
            if not isinstance(conf.get(section, {}).get(key), str):
                raise InputError(f"{path}: [{section}] {key} is missing or not a text")
    return conf


def reference(prefix: str, participant: str, month: Month) -> str:
    """PREFIX-YYYYMM-PARTICIPANT: the same for every rendering of a participant's month. A participant
    name that is not a short code (letters, digits) is replaced by a hash of it, so the reference stays
    one unbreakable token."""
    code = (
        participant
        if re.fullmatch(r"[A-Za-z0-9]{1,16}", participant)
        else ("P" + hashlib.sha256(participant.encode()).hexdigest()[:8])
    )
    return f"{prefix}-{month.first_day:%Y%m}-{code.upper()}"


def month_folder(root: str | os.PathLike[str] | UPath, month: Month | str, as_of: str | None = None) -> UPath:
    return as_of_folder(lake.location(root), "delivery", as_of) / f"month={Month.of(month)}"


def file_name(participant: str, lang: str | None = None) -> str:
    """The letter's file stem, percent-encoded: distinct participants never share a file and no name
    leaves the folder (`.html` and `.pdf` are added when written)."""
    stem = lake.file_name(participant)
    t = words(lang)
    return stem if t.lang == "es" else f"{stem}.{t.lang}"


def _frame(src: Source, table: str, month: str) -> pl.DataFrame | None:
    return src.frame("SELECT * FROM {t} WHERE month = ?", [month], t=table) if src.has(table) else None


def _month_tables(src: Source, month: str) -> dict[str, pl.DataFrame | None]:
    with_changes = src.has("vpn_changes")
    review = (
        src.frame(
            f"SELECT * FROM ({verdicts.rule_sql(with_changes)}) WHERE month = ?",
            [month],
            r="vpn_change_review",
            **({"c": "vpn_changes"} if with_changes else {}),
        )
        if src.has("vpn_change_review")
        else None
    )
    return {
        "review": review,
        "changes": _frame(src, "vpn_changes", month),
        "compliance": _frame(src, "delivery_compliance", month),
        "points": _frame(src, "delivery_points", month),
        "unreadable": _frame(src, "delivery_unreadable_rows", month),
    }


def participants(tables: dict[str, pl.DataFrame | None]) -> list[str]:
    """Who gets a letter: every participant with a change reviewed in the month, or with a change row
    no month could claim (its letter says why)."""
    names: set[str] = set()
    for key in ("review", "changes"):
        if tables[key] is not None:
            names |= set(tables[key]["participant"].drop_nulls())
    if tables["unreadable"] is not None:
        unplaced = tables["unreadable"].filter(pl.col("source").str.starts_with("vpn_changes"))
        names |= set(unplaced["participant"].drop_nulls())
    return sorted(names)


def _rows(frame: pl.DataFrame | None, **equal: str) -> list[dict[str, Any]]:
    if frame is None or not frame.height:
        return []
    for column, value in equal.items():
        frame = frame.filter(pl.col(column) == value)
    return frame.to_dicts()


def letter_view(
    t: Words, participant: str, month: Month, tables: dict[str, pl.DataFrame | None], run: dict | None
) -> dict[str, Any]:
    """Everything one letter shows (the view-model of letter.html.j2)."""
    conf = letters_config()
    review = _rows(tables["review"], participant=participant)
    changes = {c["change_id"]: c for c in _rows(tables["changes"], participant=participant)}
    ids = sorted({r["change_id"] for r in review} | set(changes))
    items = []
    for cid in ids:
        change = changes.get(cid, {})
        rules = sorted(
            (r for r in review if r["change_id"] == cid),
            key=lambda r: RULES.index(r["rule"]) if r["rule"] in RULES else len(RULES),
        )
        for r in rules:
            r["title"] = t(f"rule.{r['rule']}") if t.has(f"rule.{r['rule']}") else r["rule"]
            # a rule's own evidence that already says the change was not executed needs no second sentence
            says_it = str(r.get("detail_key") or "").endswith("not_executed")
            r["reason"] = t("verdict.reason_not_executed") if r["verdict"] == "not_evaluable" and not says_it else ""
            # the evidence in the reader's language (evidence.py); `detail` stays the analysts' English
            r["evidence"] = evidence.words(t, r.get("detail_key"), r.get("detail_args"), r.get("detail"))
        summary = [s for s in _rows(tables["compliance"], change_id=cid) if s["deadline"] is not None]
        points = _rows(tables["points"], change_id=cid)
        verdict = (
            "not_met"
            if any(r["verdict"] == "not_met" for r in rules)
            else "not_evaluable"
            if any(r["verdict"] == "not_evaluable" for r in rules)
            else "met"
        )
        items.append(
            {
                "change_id": cid,
                "vpn_id": change.get("vpn_id"),
                "dates": [(t(f"dates.{key}"), change.get(column)) for key, column in DATES] if change else None,
                "rules": rules,
                "verdict": verdict,
                "compliance": summary[0] if summary else None,
                "behind": [
                    {
                        **p,
                        "status_text": t(f"status.{p['status']}"),
                        "estimation_text": evidence.words(
                            t, p.get("estimation_key"), p.get("estimation_args"), p.get("estimation")
                        ),
                    }
                    for p in points
                    if p["status"] in BEHIND
                ],
                "extra": [{**p, "status_text": t(f"status.{p['status']}")} for p in points if p["status"] in EXTRA],
            }
        )
    count = {v: sum(c["verdict"] == v for c in items) for v in verdicts.VERDICTS}
    letter_date = run["finished_at"].date() if run and run.get("finished_at") else None
    return {
        "participant": participant,
        "month": month.label,
        "changes": items,
        "count": count,
        "reference": reference(conf["reference"]["prefix"], participant, month),
        "letter_date": letter_date,
        "sender": conf["sender"],
        "signatory": conf["signatory"],
        "unreadable": [
            {**u, "reason": evidence.words(t, u.get("reason_key"), u.get("reason_args"), u.get("reason"))}
            for u in _rows(tables["unreadable"], participant=participant)
        ],
    }


def render(
    month: Month,
    *,
    snapshot: int | None = None,
    as_of: str | None = None,
    lang: str | None = None,
    warehouse: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> dict[str, ReportFiles]:
    """Write the month's letters as of `snapshot` (what a run just published), or the snapshot run
    `as_of` published (into its own folder), or the current one; files of earlier renderings for
    participants no longer in the month are removed. A month never published is a `MayoristaError`."""
    month = Month.of(month)
    t = words(lang)
    with open_source(warehouse, as_of=as_of, snapshot_id=snapshot) as src:
        run = src.run_row("delivery", month.label)
        if run is None:
            raise MayoristaError(
                f"the delivery month {month} has no published run at warehouse snapshot {src.snapshot_id}: "
                f"no letters to write (review it first: mayorista delivery check --month {month} --input DIR)"
            )
        tables = _month_tables(src, month.label)
        snapshot_id = src.snapshot_id
    folder = month_folder(config.lake_root(lake_root), month, as_of)
    documents = {
        p: (
            render_html(
                "letter.html.j2",
                lang=t.lang,
                title=t("letter.title", month=month.label),
                kicker=t("letter.kicker"),
                subtitle=t("letter.subtitle", month=month.label),
                run_id=run["run_id"],
                snapshot_id=snapshot_id,
                published_snapshot=run["snapshot_id"],
                as_of_run=as_of,
                missing=MISSING,
                **letter_view(t, p, month, tables, run),
            ),
            folder / file_name(p, t.lang),
        )
        for p in participants(tables)
    }
    written = write_many(documents)
    keep = {path.name for files in written.values() for path in (files.html, files.pdf) if path is not None}
    if folder.exists():
        suffix = "" if t.lang == "es" else f".{t.lang}"
        for stale in folder.iterdir():
            # only this language's files: a rendering in English never removes the Spanish letters
            this_language = stale.name.endswith((f"{suffix}.html", f"{suffix}.pdf")) and (
                suffix or not re.search(r"\.[a-z]{2}\.(html|pdf)$", stale.name)
            )
            if stale.is_file() and this_language and stale.name not in keep:
                stale.unlink()
    return written
