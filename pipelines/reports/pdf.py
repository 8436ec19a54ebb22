"""A PDF of a report, laid out by WeasyPrint (installed from the package index with the project) from
the same self-contained HTML and inline SVG charts people open in a browser.

WeasyPrint needs no browser, only the system's Pango text library, which standard Debian and Ubuntu
images carry; where it is missing, `PdfUnavailable` says which packages to install. It reaches
nothing outside the document: its URL fetcher refuses every URL but inline `data:` ones, so a
report cannot fetch anything even by mistake (the HTML has no remote URL; its Content-Security-Policy
says the same to browsers). Any failure to print is a `PdfUnavailable` naming why: the HTML, already
written, stays the report, and the run that published the figures is never failed by its PDF.

Headless Chromium is still what the browser tests (tests/reports/) open the HTML with: what a person
sees in a browser."""

from __future__ import annotations

import contextlib
import io
import logging
import re

logger = logging.getLogger(__name__)

# what to install where Pango is missing (Debian/Ubuntu names; WeasyPrint loads these by name)
PANGO_PACKAGES = "apt-get install libpango-1.0-0 libpangoft2-1.0-0 fontconfig fonts-dejavu-core"

# WeasyPrint reports every CSS property it ignores at WARNING, and its font subsetting (fontTools)
# chatters at INFO: neither is about our figures, so a run's log shows only real errors of theirs.
for _noisy in ("weasyprint", "weasyprint.progress", "fontTools"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)


class PdfUnavailable(Exception):
    """No PDF could be printed; the message says why (the HTML report is written regardless)."""


def _offline_fetcher(weasyprint):
    """WeasyPrint's URL fetcher restricted to inline `data:` URLs: anything else (http, https, ftp, and
    file: too, which no report uses) is refused before it is opened, so printing never reaches the
    network or the disk; a refused resource is left out of the page (WeasyPrint logs it)."""
    return weasyprint.urls.URLFetcher(allowed_protocols={"data"}, allow_redirects=False, timeout=1)


def _weasyprint():
    """The weasyprint module, or `PdfUnavailable` saying what to install."""
    try:
        # where a library is missing WeasyPrint prints a banner to stdout before raising: our message
        # below says what to do, and stdout stays the command's output
        with contextlib.redirect_stdout(io.StringIO()):
            import weasyprint
            import weasyprint.urls
    except OSError as exc:  # cffi could not load a shared library: Pango (or its FreeType/fontconfig parts)
        named = re.search(r"cannot load library '([^']+)'", str(exc))
        which = f"cannot load {named.group(1)}" if named else str(exc).strip().splitlines()[0][:120]
        raise PdfUnavailable(
            f"the Pango text library WeasyPrint prints with is missing ({which}); install it: {PANGO_PACKAGES}"
        ) from None
    except ImportError as exc:
        raise PdfUnavailable(
            f"WeasyPrint is not installed in this environment ({exc}); run `uv sync --locked`"
        ) from None
    return weasyprint


def unavailable() -> str | None:
    """Why no PDF can be printed on this machine, or None when it can (for messages, e.g. `make demo`)."""
    try:
        _weasyprint()
    except PdfUnavailable as why:
        return str(why)
    return None


def print_pdf(html: str) -> bytes:
    """The PDF of one HTML document (page size, margins and page numbers from the document's @page rules)."""
    weasyprint = _weasyprint()
    try:
        return weasyprint.HTML(string=html, base_url=None, url_fetcher=_offline_fetcher(weasyprint)).write_pdf()
    except Exception as exc:  # noqa: BLE001 - any layout failure: the HTML is the report, the run stands
        raise PdfUnavailable(f"WeasyPrint could not print the report: {type(exc).__name__}: {exc}") from exc
