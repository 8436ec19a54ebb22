"""The ex-post section of the NCC-11 reports (pipelines/reports/expost.py): per distributor, the
projected and metered energy per month and band (chart and table), the deviation, the coverage, and
clear marks on months not yet metered and months below 100 % completeness; in the quarter's report and
in the annual Informe; in Spanish, and in English with `--lang en`. Figures from
tests/ncc11/test_expost.py (hand-computed there)."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.ncc11 import expost, job
from pipelines.reports import ncc11
from pipelines.reports.i18n import words
from pipelines.reports.source import open_source
from tests.ncc11.fixtures import QUARTER, write_quarter
from tests.ncc11.test_expost import MARCH_COMPLETENESS, MARCH_HOURS, _publish_metering, published  # noqa: F401

ES, EN = words("es"), words("en")


def _section(html: str, name: str, quarter: str) -> str:
    start = html.index(f'<section class="expost" data-distributor="{name}" data-quarter="{quarter}">')
    return html[start : html.index("</section>", start)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", html, flags=re.S)))


def test_quarter_report_before_the_expost_runs_says_so(published):  # noqa: F811
    with open_source() as src:
        html = ncc11.quarter_html(src, QUARTER)
    assert ES("expost.not_run", quarter=QUARTER) in _section(html, "D1", QUARTER)


def test_quarter_report_shows_the_expost_per_distributor(published):  # noqa: F811
    expost.run(QUARTER)
    with open_source() as src:
        html = ncc11.quarter_html(src, QUARTER)
    d1 = _section(html, "D1", QUARTER)
    assert ES("expost.title") in d1 and "<svg" in d1  # the chart
    # April is not metered: a row saying so, and the note naming it
    assert 'class="not-metered" data-month="2026-04"' in d1 and ES("expost.not_metered") in d1
    assert ES("expost.not_metered_note", months="2026-04") in d1
    text = _text(d1)
    # March punta: 372.0 projected, 390.0 metered, +18.0 MWh, 4.84 %, 1,200 USD, 1 point, 98.72 %
    assert "2026-03 punta 372.0 390.0 18.0 4.84 1,200 1 98.72 0.00" in text
    # intermedia: estimated 1,116 of 1,227.6 MWh = 90.91 %
    assert "2026-03 intermedia 1,116.0 1,227.6 111.6 10.00 7,440 1 98.72 90.91" in text
    # the month totals: March 2,232 projected, 2,287.2 metered (+55.2, 2.47 %, 3,680 USD); below 100 %: marked
    assert "2026-03 total del mes 2,232.0 2,287.2 55.2 2.47 3,680 1 ⚠ 98.72" in text
    assert 'class="total below" data-month="2026-03"' in d1 and 'class="total below" data-month="2026-05"' in d1
    assert ES("expost.below_note") in d1
    # May intermedia: nothing metered; the estimated share of 0 MWh is undefined (shown as —, never 0)
    assert "2026-05 intermedia 837.0 0.0 -837.0 -100.00 -55,800 2 91.49 —" in text
    # D2 has no consumption point: said so, metered figures undefined
    d2 = _section(html, "D2", QUARTER)
    assert ES("expost.no_points") in d2
    assert "2026-03 punta 496.0 — — — — 0 — —" in _text(d2)


def test_the_annual_informe_has_the_expost_of_each_published_quarter(workspace, tmp_path: Path):
    job.run("2026-02", write_quarter(tmp_path / "in", "2026-02"))  # a tariff quarter: Feb, Mar, Apr
    _publish_metering(workspace / "warehouse.sqlite", {"2026-03": (MARCH_HOURS, MARCH_COMPLETENESS)})
    result = expost.run("2026-02")
    assert result.metered == ["2026-03"] and result.not_metered == ["2026-02", "2026-04"]
    with open_source() as src:
        html = ncc11.year_html(src, 2026)
    d1 = _section(html, "D1", "2026-02")
    assert ES("expost.quarter", quarter="2026-02") in d1 and "<svg" in d1
    assert ES("expost.not_metered_note", months="2026-02, 2026-04") in d1
    # quarter 2026-02's PMCE of D1 is 66.67 too: March punta +18 MWh -> 1,200 USD
    assert "2026-03 punta 372.0 390.0 18.0 4.84 1,200 1 98.72 0.00" in _text(d1)


def test_the_expost_section_in_english(published):  # noqa: F811
    """`--lang en`: the section's words come from the English catalogue, none from the Spanish one;
    the figures are the same."""
    expost.run(QUARTER)
    with open_source() as src:
        html = ncc11.quarter_html(src, QUARTER, lang="en")
    d1 = _section(html, "D1", QUARTER)
    assert EN("expost.title") == "Ex-post: projected and metered energy" and EN("expost.title") in d1
    assert EN("expost.not_metered_note", months="2026-04") in d1 and EN("expost.below_note") in d1
    text = _text(d1)
    assert "2026-03 peak (punta) 372.0 390.0 18.0 4.84 1,200 1 98.72 0.00" in text
    assert "2026-03 month total 2,232.0 2,287.2 55.2 2.47 3,680 1 ⚠ 98.72" in text
    assert "projected MWh" in text and "deviation USD" in text
    # the chart's series are named in English too
    assert "peak (punta) projected" in d1 and "peak (punta) metered" in d1
    for spanish in ("total del mes", "proyectada", "desviación", "mes no medido", "completitud"):
        assert spanish not in d1, spanish
    assert EN("expost.no_points") in _section(html, "D2", QUARTER)
