"""Reports for their readers (issue #24): Spanish by default with `--lang en`, one catalogue of
strings per language, one verdict word for a VPN change everywhere (letter, summary), one rounding
rule (amounts half away from zero as SQL's round(), percentages floored to 2 decimals), a letter
re-rendered by `mayorista report delivery` identical to the one the run wrote."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import cli, summary
from pipelines.delivery.job import SCHEMAS
from pipelines.periods import Month
from pipelines.reports import delivery, fmt
from pipelines.reports.i18n import LANGUAGES, catalogue, words
from tests.reports.conftest import assert_clean, cells, needs_chromium, publish

MONTH = "2026-04"
TEMPLATES = Path(delivery.__file__).with_name("templates")


def test_catalogues_hold_the_same_keys_and_templates_spell_no_words():
    es, en = catalogue("es"), catalogue("en")
    assert set(es) == set(en)
    # placeholders agree between the languages
    for key in es:
        assert set(re.findall(r"{(\w+)}", es[key])) == set(re.findall(r"{(\w+)}", en[key])), key
    assert words("es")("verdict.not_met") == "no cumple" and words("en")("verdict.not_met") == "not met"
    with pytest.raises(Exception, match="--lang must be one of es, en"):
        words("fr")
    assert LANGUAGES == ("es", "en")


@pytest.mark.parametrize(
    ("value", "decimals", "shown"),
    [
        (1271166.5, 0, "1,271,167"),  # half away from zero, as DuckDB's round(): never 1,271,166
        (-2.5, 0, "-3"),
        (1234567.891, 2, "1,234,567.89"),
        (-0.4, 0, "0"),  # never "-0"
        (None, 0, fmt.MISSING),
        (float("nan"), 2, fmt.MISSING),
    ],
)
def test_amounts_round_half_away_from_zero_like_sql(value, decimals, shown):
    assert fmt.num(value, decimals) == shown
    if value is not None and value == value:
        sql = duckdb.sql(f"SELECT round({value}::DOUBLE, {decimals})").fetchone()[0]
        assert fmt.num(sql, decimals) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (99.995, "99.99 %"),  # floored: a value below 100 % never shows as 100.00 %
        (99.9999, "99.99 %"),
        (100 * 2879 / 2880, "99.96 %"),  # what the delivery review's evidence writes for 2879 of 2880
        (99.9, "99.90 %"),  # the float 99.9 is not cut to 99.89
        (100.0, "100.00 %"),
        (None, fmt.MISSING),
    ],
)
def test_percentages_are_floored_to_two_decimals(value, shown):
    assert fmt.pct(value) == shown


def test_dates_prose_and_tables():
    assert fmt.prose_date(date(2026, 4, 7)) == "07/04/2026" and fmt.iso(date(2026, 4, 7)) == "2026-04-07"
    assert fmt.prose_date("2026-04-07") == "07/04/2026" and fmt.prose_date("2026-13-01") == "2026-13-01"


def _tables() -> dict[str, pl.DataFrame]:
    """INDPAC: CHG-1 executed, notice too short (no cumple); CHG-2 never executed (its interrogation and
    delivery rules cannot be judged: no evaluable); SOLSUR: CHG-3 meets every rule (cumple)."""
    review_rows = [
        ("CHG-1", "INDPAC", "notice", False, "letter 2026-04-01, proposed 2026-04-03: 2 business days"),
        ("CHG-1", "INDPAC", "interrogation", True, "all 2 metering point(s) 100%"),
        ("CHG-1", "INDPAC", "delivery", True, "all delivered"),
        ("CHG-2", "INDPAC", "notice", True, "letter 2026-03-20, proposed 2026-04-10"),
        ("CHG-2", "INDPAC", "interrogation", False, "execution date is missing: the change was not carried out"),
        ("CHG-2", "INDPAC", "delivery", False, "execution date is missing: not notified"),
        ("CHG-3", "SOLSUR", "notice", True, "letter 2026-03-20, proposed 2026-04-10"),
        ("CHG-3", "SOLSUR", "interrogation", True, "all 1 metering point(s) 100%"),
        ("CHG-3", "SOLSUR", "delivery", True, "all delivered"),
    ]
    review = pl.DataFrame(
        [dict(zip(("change_id", "participant", "rule", "ok", "detail"), r)) for r in review_rows]
    ).with_columns(month=pl.lit(MONTH), line=pl.lit(2))
    changes = pl.DataFrame(
        {
            "change_id": ["CHG-1", "CHG-2", "CHG-3"],
            "participant": ["INDPAC", "INDPAC", "SOLSUR"],
            "vpn_id": ["VPN-0042", "VPN-0042", "VPN-0007"],
            "letter_date": ["2026-04-01", "2026-03-20", "2026-03-20"],
            "proposed_date": ["2026-04-03", "2026-04-10", "2026-04-10"],
            "effective_date": ["2026-04-03", "2026-04-10", "2026-04-10"],
            "medicion_approved_on": ["2026-04-02"] * 3,
            "tecnologia_approved_on": ["2026-04-02"] * 3,
            "executed_on": ["2026-04-03", "", "2026-04-10"],
            "notified_on": ["2026-04-03", "", "2026-04-10"],
            "line": [2, 3, 4],
        }
    ).with_columns(month=pl.lit(MONTH))
    compliance = pl.DataFrame(
        {
            "change_id": ["CHG-1", "CHG-2", "CHG-3"],
            "participant": ["INDPAC", "INDPAC", "SOLSUR"],
            "supply_month": [MONTH, None, MONTH],
            "notified_on": [date(2026, 4, 3), None, date(2026, 4, 10)],
            "deadline": [date(2026, 4, 5), None, date(2026, 4, 12)],
            "required_points": [2, 0, 1],
            "on_time_points": [2, 0, 1],
            "late_points": [0, 0, 0],
            "missing_points": [0, 0, 0],
            "compliant": [True, None, True],  # 14.10 alone: not the change's verdict
        }
    ).with_columns(month=pl.lit(MONTH))
    empty = {n: pl.DataFrame(schema=SCHEMAS[n]) for n in ("delivery_points", "estimated_hourly")}
    frames = {
        "vpn_change_review": review,
        "delivery_compliance": compliance,
        "vpn_changes": changes,
        "delivery_unreadable_rows": pl.DataFrame(schema=SCHEMAS["delivery_unreadable_rows"]),
        **empty,
    }
    return {n: f.select(pl.col(c).cast(t) for c, t in SCHEMAS[n].items()) for n, f in frames.items()}


@pytest.fixture
def letters(tmp_path) -> dict:
    wh, lake = tmp_path / "w.sqlite", tmp_path / "lake"
    run_id, snapshot = publish("delivery", MONTH, _tables(), "month", wh, lake)
    written = delivery.render(Month.parse(MONTH), snapshot=snapshot, warehouse=wh, lake_root=lake)
    return {"wh": wh, "lake": lake, "run_id": run_id, "snapshot": snapshot, "written": written}


def _verdicts(html: str) -> dict[str, str]:
    """Each change's verdict word as the letter's heading shows it."""
    return dict(re.findall(r'Cambio <span class="nb">([^<]+)</span>.*?data-verdict="\w+">([^<]+)</span></h2>', html))


def test_one_verdict_word_across_summary_and_letters(letters):
    indpac = letters["written"]["INDPAC"].html.read_text()
    solsur = letters["written"]["SOLSUR"].html.read_text()
    in_letters = {**_verdicts(indpac), **_verdicts(solsur)}
    assert in_letters == {"CHG-1": "no cumple", "CHG-2": "no evaluable", "CHG-3": "cumple"}
    # a change never executed: 'no evaluable' with the reason, never a red 'no cumple'
    assert "El cambio no se ejecutó" in indpac and indpac.count('data-verdict="not_met"') == 2  # CHG-1 + its rule
    text = summary.render(letters["wh"])
    for change, word in in_letters.items():
        line = next(line for line in text.splitlines() if change in line)
        assert line.rstrip().rstrip("│").rstrip().endswith(word), line
    assert "compliant" not in text  # 14.10 alone is not shown as if it were the change's verdict


def test_a_rerendering_is_what_the_run_wrote(letters, capsys):
    before = {p: f.html.read_bytes() for p, f in letters["written"].items()}
    args = ["--warehouse", str(letters["wh"]), "--lake", str(letters["lake"])]
    assert cli.main(["report", "delivery", "--month", MONTH, *args]) == 0
    assert {p: f.html.read_bytes() for p, f in letters["written"].items()} == before
    # a one-change letter is one page of US Letter
    from pypdf import PdfReader

    assert len(PdfReader(letters["written"]["SOLSUR"].pdf).pages) == 1
    # its dates table and VPN id are there, read from the warehouse (vpn_changes)
    assert "VPN-0042" in before["INDPAC"].decode() and "2026-04-03" in before["INDPAC"].decode()
    # English beside the Spanish, never replacing it
    assert cli.main(["report", "delivery", "--month", MONTH, "--lang", "en", *args]) == 0
    folder = letters["written"]["INDPAC"].html.parent
    english = (folder / "INDPAC.en.html").read_text()
    assert '<html lang="en">' in english and "not evaluable" in english
    assert (folder / "INDPAC.html").read_bytes() == before["INDPAC"]


@needs_chromium
def test_what_a_reader_sees_in_spanish_and_english(letters, open_report):
    html = letters["written"]["INDPAC"].html
    seen = open_report(html)
    assert_clean(seen, html)
    page = seen.page
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.inner_text("#verdict") == "2 cambio(s) revisado(s): 0 cumple(n), 1 no cumple(n), 1 no evaluable(s)."
    rules = {r[0]: r[1] for r in cells(page, 'table.rules[data-change="CHG-2"] tr[data-rule]')}
    assert set(rules.values()) == {"cumple", "no evaluable"}
    # '—' means one thing only: no value; an empty execution date of a change never executed is one
    dates = cells(page, "table.dates tr")
    assert dates[0][0] == "carta" and "—" in dates[-1]
    # no identifier or date broken across lines: each stays on one line box
    for selector in ("#reference", "#letter-date"):
        box = page.eval_on_selector(selector, "e => e.getClientRects().length")
        assert box == 1, selector
    files = delivery.render(Month.parse(MONTH), lang="en", warehouse=letters["wh"], lake_root=letters["lake"])
    seen = open_report(files["INDPAC"].html)
    assert seen.page.evaluate("document.documentElement.lang") == "en"
    assert "not evaluable" in seen.page.inner_text("main")
