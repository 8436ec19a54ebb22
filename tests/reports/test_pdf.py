"""The reports' PDFs, printed by WeasyPrint with no browser at all: a real report rendered in a
process whose PATH holds no Chromium, on US Letter paper, with "N / M" page numbers on every page; a
remote URL in a document is never fetched; and where Pango cannot be loaded (hidden in a private
mount namespace, so the library really fails to load) the HTML is still written and the reason names
the packages to install."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pypdf import PdfReader

from pipelines.reports import pdf
from tests.reports.conftest import publish
from tests.reports.test_ncc11_report import quarter_tables

ROOT = Path(__file__).resolve().parents[2]
QUARTER = "2026-05"
LETTER_PT = (612.0, 792.0)  # 8.5 x 11 in


def _render_without_browser(tmp_path: Path, *extra: str, prefix: list[str] = ()) -> subprocess.CompletedProcess:
    """`mayorista report ncc11 --quarter` in its own process, with a PATH that holds only the venv's
    python (no chromium, no google-chrome: the PDF must not need one)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "MAYORISTA_CHROMIUM"}
    env["PATH"] = str(bin_dir)
    code = "import sys; from pipelines.cli import main; sys.exit(main())"
    return subprocess.run(
        [*prefix, sys.executable, "-c", code, "report", "ncc11", "--quarter", QUARTER, *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def published(tmp_path) -> tuple[Path, Path]:
    wh, lake = tmp_path / "w.sqlite", tmp_path / "lake"
    publish("ncc11", QUARTER, quarter_tables(QUARTER), "quarter", wh, lake)
    return wh, lake


def test_pdf_without_chromium_is_letter_with_page_numbers(tmp_path, published):
    wh, lake = published
    done = _render_without_browser(tmp_path, "--warehouse", str(wh), "--lake", str(lake))
    assert done.returncode == 0, done.stderr
    assert shutil.which("chromium", path=str(tmp_path / "bin")) is None
    target = lake / "reports" / "ncc11" / f"quarter={QUARTER}" / f"ncc11-{QUARTER}.pdf"
    assert target.read_bytes().startswith(b"%PDF"), done.stdout
    reader = PdfReader(target)
    pages = len(reader.pages)
    assert pages >= 2  # the quarter report of two distributors, its charts and provenance: more than a page
    for number, page in enumerate(reader.pages, start=1):
        size = (float(page.mediabox.width), float(page.mediabox.height))
        assert size == pytest.approx(LETTER_PT, abs=0.5), size
        assert f"{number} / {pages}" in page.extract_text(), f"no page number on page {number}"
    assert "D1" in "".join(page.extract_text() for page in reader.pages)


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        _Counting.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *args):
        pass


def test_printing_reaches_nothing_outside_the_document():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        html = (
            f'<html><head><link rel="stylesheet" href="{base}/style.css"></head>'
            f'<body><p>text</p><img src="{base}/chart.png"><img src="file:///etc/passwd">'
            '<img src="data:image/svg+xml;utf8,<svg xmlns=%22http://www.w3.org/2000/svg%22 width=%2210%22 '
            'height=%2210%22><rect width=%2210%22 height=%2210%22/></svg>"></body></html>'
        )
        data = pdf.print_pdf(html)
    finally:
        server.shutdown()
        server.server_close()
    assert data.startswith(b"%PDF")
    assert _Counting.requests == []


def test_without_pango_the_html_is_written_and_the_reason_says_what_to_install(tmp_path, published):
    """Pango's library is replaced by an empty file in a private mount namespace: loading it fails as
    on a machine without it. The report command still writes the HTML, exits 0, logs the failure naming
    the report, says what to install, and removes the PDF of an earlier rendering."""
    library = Path("/usr/lib/x86_64-linux-gnu/libpango-1.0.so.0")
    probe = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"mount --bind /dev/null {library}"]
    if not library.exists() or shutil.which("unshare") is None or subprocess.run(probe).returncode != 0:
        pytest.skip("cannot hide Pango here (needs root, unshare and Debian's multiarch library path)")
    wh, lake = published
    folder = lake / "reports" / "ncc11" / f"quarter={QUARTER}"
    assert _render_without_browser(tmp_path, "--warehouse", str(wh), "--lake", str(lake)).returncode == 0
    assert (folder / f"ncc11-{QUARTER}.pdf").exists()  # an earlier rendering, with its PDF
    script = f'{shutil.which("mount")} --bind /dev/null {library} && exec "$@"'
    done = _render_without_browser(
        tmp_path,
        "--warehouse",
        str(wh),
        "--lake",
        str(lake),
        prefix=["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh"],
    )
    assert done.returncode == 0, done.stderr
    # the HTML is the new one, and the earlier PDF, which no longer matches it, is gone
    assert (folder / f"ncc11-{QUARTER}.html").exists() and not (folder / f"ncc11-{QUARTER}.pdf").exists()
    assert f"no PDF for {folder / f'ncc11-{QUARTER}.html'}" in done.stderr  # logged, naming the report
    assert "no PDF:" in done.stdout and "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr and "-----" not in done.stdout  # nor WeasyPrint's banner
