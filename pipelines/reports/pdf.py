"""A PDF of a report printed by headless Chromium from the distribution's packages (`chromium`).

The HTML is written to a private temporary folder and printed by a Chromium started with its own
new profile, no sandbox (it runs as a service user, often root, in a container), no GPU, and every
background service that could reach the network off (updates, sync, safe browsing); all host names
resolve to nothing, so a report cannot fetch anything even by mistake. When Chromium is not on the
machine the HTML is still the report: `PdfUnavailable` says why there is no PDF."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_TIMEOUT_S = 120.0


class PdfUnavailable(Exception):
    """No PDF could be printed; the message says why (the HTML report is written regardless)."""


def chromium() -> str | None:
    """The browser to print with: $MAYORISTA_CHROMIUM, else the distribution's chromium."""
    explicit = os.environ.get("MAYORISTA_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name) if not name.startswith("/") else (name if Path(name).exists() else None)
        if found:
            return found
    return None


def flags(profile: Path) -> list[str]:
    """The command-line flags of a headless, offline Chromium (shared with the browser tests)."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--disable-default-apps",
        "--safebrowsing-disable-auto-update",
        "--disable-dev-shm-usage",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
    ]


def print_pdf(html: str) -> bytes:
    """The PDF of one HTML document (A4, the document's own @page rules, no header or footer)."""
    browser = chromium()
    if browser is None:
        raise PdfUnavailable(
            "Chromium is not installed (apt-get install chromium, or set MAYORISTA_CHROMIUM to a "
            "Chromium or Chrome executable); the HTML report was written"
        )
    with tempfile.TemporaryDirectory(prefix="mayorista-pdf-") as tmp:
        folder = Path(tmp)
        page, out = folder / "report.html", folder / "report.pdf"
        page.write_text(html, encoding="utf-8")
        command = [
            browser,
            *flags(folder / "profile"),
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "HOME": str(folder)},
            )
        except subprocess.TimeoutExpired as exc:
            raise PdfUnavailable(f"Chromium did not finish printing within {_TIMEOUT_S:.0f} s") from exc
        except OSError as exc:
            raise PdfUnavailable(f"Chromium ({browser}) could not be started: {exc}") from exc
        if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-3:]
            raise PdfUnavailable(
                f"Chromium ({browser}) exited with code {done.returncode} without a PDF: {' | '.join(tail)}"
            )
        return out.read_bytes()
