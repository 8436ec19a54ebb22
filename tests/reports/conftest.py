"""Browser and data for the report tests.

Each report is opened in the distribution's headless Chromium (`/usr/bin/chromium`, installed by
.ci/run) through playwright, which downloads no browser when given `executable_path`: what a person
sees in a browser. The browser tests skip, saying so, only when that Chromium is absent; the PDFs
(WeasyPrint, pipelines/reports/pdf.py) need no browser and are tested without one (test_pdf.py).
Data: tiny tables published through the real run
skeleton (`pipelines.run`), so every report reads real snapshots and run_manifests rows."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from pipelines import run as runs
from pipelines.quality import CheckResult
from pipelines.warehouse import Write

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    """The browser to open reports with: $MAYORISTA_CHROMIUM, else the distribution's chromium."""
    explicit = os.environ.get("MAYORISTA_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name) if not name.startswith("/") else (name if Path(name).exists() else None)
        if found:
            return found
    return None


# headless and offline: no sandbox (tests may run as root in a container), no GPU, every background
# service that could reach the network off, and all host names resolving to nothing
OFFLINE_FLAGS = [
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
]

CHROMIUM = chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (apt-get install chromium; "
    ".ci/run installs it): the reports cannot be opened in a browser",
)


@dataclass
class Loaded:
    """What a page did while it loaded: every request, failures, script errors, and a screenshot."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""
    page: object = None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=OFFLINE_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_report(browser) -> Iterator[object]:
    contexts = []

    def load(path: Path) -> Loaded:
        context = browser.new_context(viewport={"width": 1000, "height": 1400})
        contexts.append(context)
        page = context.new_page()
        seen = Loaded(page=page)
        page.on("request", lambda r: seen.requests.append(r.url))
        page.on("requestfailed", lambda r: seen.failed.append(f"{r.url}: {r.failure}"))
        page.on("pageerror", lambda e: seen.errors.append(str(e)))
        page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
        page.goto(Path(path).as_uri(), wait_until="load")
        seen.screenshot = page.screenshot(full_page=True)
        return seen

    yield load
    for context in contexts:
        context.close()


def assert_clean(seen: Loaded, path: Path) -> None:
    """Only the file itself was requested, nothing failed, no script error, and the page is not blank."""
    assert seen.requests == [Path(path).as_uri()], seen.requests
    assert seen.failed == [] and seen.errors == []
    from PIL import Image

    image = Image.open(io.BytesIO(seen.screenshot)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert image.size[1] > 300 and len(colours) > 20, "the screenshot is blank"
    dark = sum(n for n, (r, g, b) in colours if r + g + b < 200)
    assert dark > 500, "no text drawn"


def cells(page, selector: str) -> list[list[str]]:
    """The text of each row's cells (th and td) of the rows matching `selector`."""
    return page.eval_on_selector_all(
        selector, "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText.trim()))"
    )


def number(text: str) -> float | None:
    """A figure as displayed ('1,234.57', '-12', '99.50 %', '—') back to a number (None for '—')."""
    text = text.replace(",", "").replace("%", "").strip()
    return None if text in ("—", "") else float(text)


def shown_equals(text: str, value: float | None, decimals: int) -> bool:
    """The displayed text is the warehouse value rounded to the displayed precision."""
    shown = number(text)
    if value is None:
        return shown is None
    return shown is not None and abs(shown - value) <= 0.5 * 10**-decimals + 1e-9 * abs(value)


def publish(
    pipeline: str,
    period: str,
    tables: dict[str, pl.DataFrame],
    column: str,
    wh: Path,
    lake: Path,
    inputs: list[Path] = (),
    checks: list[CheckResult] = (),
) -> tuple[str, int]:
    """Publish hand-made tables as one run of `pipeline` for `period`: (run id, snapshot)."""
    with runs.start(pipeline, period, warehouse=wh, lake_root=lake) as r:
        for path in inputs:
            r.manifest.add_input(path, 3)
        r.validation = list(checks)
        r.publish([Write(t, f, {column: period}, (column,)) for t, f in tables.items()])
    return r.run_id, r.snapshot_id
