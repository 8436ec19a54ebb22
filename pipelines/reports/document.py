"""Templates (jinja2, `templates/`), number formats, and writing a report: the HTML file and its PDF
under `<lake>/reports/...` (written atomically, local disk or object store alike)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup
from upath import UPath

from pipelines import lake
from pipelines.reports import pdf

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).with_name("templates")
MISSING = "—"  # how a NULL (an undefined price) is shown: never as 0


@dataclass
class ReportFiles:
    html: UPath
    pdf: UPath | None
    pdf_note: str = ""  # why there is no PDF

    def describe(self) -> str:
        return f"{self.html}\n{self.pdf}" if self.pdf else f"{self.html}\n(no PDF: {self.pdf_note})"


def num(value: object, decimals: int = 0) -> str:
    """1234567.891 -> '1,234,568' (decimals=0) or '1,234,567.89' (decimals=2); NULL/NaN -> '—'."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return MISSING
    rounded = round(float(value), decimals)
    return f"{rounded if rounded != 0 else 0.0:,.{decimals}f}"  # never "-0"


def pct(value: object, decimals: int = 1) -> str:
    return MISSING if num(value, decimals) == MISSING else f"{num(value, decimals)} %"


def when(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=num, pct=pct, when=when)
    env.globals["svg"] = lambda text: Markup(text)  # charts: SVG we made ourselves from numbers
    env.globals["missing"] = MISSING  # also in imported macros, which do not see the context
    return env


def render_html(template: str, **context: object) -> str:
    return (
        environment().get_template(template).render(generated_at=datetime.now().strftime("%Y-%m-%d %H:%M"), **context)
    )


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
