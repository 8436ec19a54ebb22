"""Templates (jinja2, `templates/`), number formats, and writing a report: the HTML file and its PDF
under `<lake>/reports/...` (written atomically, local disk or object store alike)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup, escape
from upath import UPath

from pipelines import lake
from pipelines.reports import fmt, pdf
from pipelines.reports.fmt import MISSING
from pipelines.reports.i18n import words

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class ReportFiles:
    html: UPath
    pdf: UPath | None
    pdf_note: str = ""  # why there is no PDF

    def describe(self) -> str:
        return f"{self.html}\n{self.pdf}" if self.pdf else f"{self.html}\n(no PDF: {self.pdf_note})"


# a token holding a hyphen or a slash (an identifier such as PM-005, a date 2026-04-07 or 07/04/2026)
_TOKEN = re.compile(r"[\w.]+(?:[-/][\w.]+)+")


def keep(text: object) -> Markup:
    """Free text (a rule's evidence) with its identifiers and dates kept whole on one line."""
    return Markup(_TOKEN.sub(lambda m: f'<span class="nb">{m.group(0)}</span>', str(escape(text))))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # one way to write a figure or a date (fmt.py): amounts half away from zero, percentages floored
    env.filters.update(num=fmt.num, pct=fmt.pct, iso=fmt.iso, date=fmt.prose_date, keep=keep)
    env.globals["svg"] = lambda text: Markup(text)  # charts: SVG we made ourselves from numbers
    env.globals["missing"] = MISSING  # also in imported macros, which do not see the context
    return env


def render_html(template: str, *, lang: str | None = None, **context: object) -> str:
    """The document in `lang` (es by default): templates name their words by key, `t("...")`. No
    rendering time is printed: a document is a function of its snapshot and language, so rendering
    it again gives the same bytes."""
    t = words(lang)
    return environment().get_template(template).render(t=t, lang=t.lang, **context)


def check_words(t, check: dict) -> str:
    """A data-quality result in words (not Great Expectations' internals): what was expected of which
    column, and its examples."""
    kind = f"gx.{check.get('check')}"
    column = check.get("column") or ""
    said = t(kind, column=column) if t.has(kind) else t("gx.other", check=check.get("check"), column=column)
    detail = str(check.get("detail") or "")
    if detail.startswith("e.g. "):
        detail = t("gx.examples", values=detail[5:])
    elif detail.startswith("observed "):
        detail = t("gx.observed", value=detail[9:])
    return f"{said}{': ' + detail if detail else ''}"


def subtitle(t, what: str, run: dict | None, snapshot_id: int) -> str:
    """The header line: what the document covers, the snapshot its data was published in, and the
    snapshot it was read from when that is a later one."""
    published = run["snapshot_id"] if run else None
    if published is None:
        where = t("doc.read_at", snapshot=snapshot_id)
    elif published == snapshot_id:
        where = t("doc.published_in", snapshot=published)
    else:
        where = t("doc.published_in_read_at", snapshot=published, read=snapshot_id)
    return f"{what} · {where}"


def target(folder: UPath, stem: str, lang: str | None) -> UPath:
    """`folder/stem` in Spanish (the default), `folder/stem.en` in English: both can sit side by side."""
    t = words(lang)
    return folder / (stem if t.lang == "es" else f"{stem}.{t.lang}")


def write(html: str, target: UPath, *, make_pdf: bool = True) -> ReportFiles:
    """Write `<target>.html` and `<target>.pdf`; when printing fails (e.g. no Pango on the machine) the
    HTML is still written, the failure is logged naming the report, `pdf_note` says why there is no PDF,
    and the PDF of an earlier rendering, if any, is removed (it would not match the new HTML)."""
    html_path = lake.write_text(html, target.with_name(target.name + ".html"))
    if not make_pdf:
        return ReportFiles(html_path, None, "PDF not requested")
    pdf_path = target.with_name(target.name + ".pdf")
    try:
        data = pdf.print_pdf(html)
    except pdf.PdfUnavailable as why:
        logger.warning("no PDF for %s: %s", html_path, why)
        # a PDF of an earlier rendering would no longer match the HTML next to it: never leave one
        if pdf_path.exists():
            pdf_path.unlink()
        return ReportFiles(html_path, None, str(why))
    return ReportFiles(html_path, lake.write_bytes(data, pdf_path))


def write_many(documents: dict[str, tuple[str, UPath]]) -> dict[str, ReportFiles]:
    """Several reports (letters), one after the other: WeasyPrint lays out in this process, in Python
    (threads would only share the GIL), and its font machinery is not documented as thread-safe."""
    return {key: write(html, target) for key, (html, target) in documents.items()}


def as_of_folder(root: UPath, kind: str, as_of: str | None) -> UPath:
    """`<lake>/reports/<kind>`; a past publication (--as-of RUN_ID) goes to its own folder
    `<lake>/reports/<kind>/as-of=<run id>/`, so it never replaces what the pipelines last wrote."""
    folder = lake.location(root) / "reports" / kind
    return folder / f"as-of={lake.safe_name(as_of)}" if as_of else folder
