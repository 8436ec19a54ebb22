"""Reports for their readers (issue #24): Spanish by default with `--lang en`, one catalogue of
strings per language, one verdict word for a VPN change everywhere (letter, summary), one rounding
rule (amounts half away from zero as SQL's round(), percentages floored to 2 decimals), a letter
re-rendered by `mayorista report delivery` identical to the one the run wrote."""

from __future__ import annotations

import html as htmllib
import json
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


def _fact(key: str, **fields: str) -> dict:
    """A nested fact as the delivery run publishes it (pipelines/delivery/rules.py: fact)."""
    return {"key": key, **dict.fromkeys(("column", "value", "date", "kind", "first", "last")), **fields}


NO_EXECUTION = _fact("no_date", column="executed_on")
# CHG-1's notice, as the run words it for analysts and publishes it for the letters: letter Wed 1 April,
# + 5 business days = Fri 10 April (2 and 3 April are Maundy Thursday and Good Friday)
NOTICE_DETAIL = (
    "letter 2026-04-01, proposed 2026-04-03: less than 5 business days' notice; earliest allowed 2026-04-10 "
    "(not business days in between: 2026-04-02 public holiday: Maundy Thursday, 2026-04-03 public holiday: Good Friday)"
)
NOTICE_ARGS = {
    "problem": None,
    "letter": "2026-04-01",
    "proposed": "2026-04-03",
    "days": 5,
    "due": "2026-04-10",
    "closed": [
        _fact("closed", date="2026-04-02", kind="holiday"),
        _fact("closed", date="2026-04-03", kind="holiday"),
    ],
}
# the phrases of the English evidence and reasons: none may appear in a Spanish letter
ENGLISH = (
    "business days",
    "earliest allowed",
    "not business days",
    "public holiday",
    "metering point(s)",
    "was not carried out",
    "cannot be judged",
    "no month can be reviewed",
    "not counted",
    "in row",
    "is not a date",
    "no execution date",
    "required points",
    "deadline end",
    "Maundy Thursday",
)


def _tables() -> dict[str, pl.DataFrame]:
    """INDPAC: CHG-1 executed, notice too short (no cumple); CHG-2 never executed (its interrogation and
    delivery rules cannot be judged: no evaluable); a delivery row with no time and a change row with a
    date that is no date (unreadable); SOLSUR: CHG-3 meets every rule (cumple). Each review row carries
    its English detail and its evidence key and values, as the delivery run publishes them."""
    counted = {"notified": "2026-04-03", "deadline": "2026-04-05", "late": 0, "missing": 0}
    review_rows = [
        ("CHG-1", "INDPAC", "notice", False, NOTICE_DETAIL, "notice.not_met", NOTICE_ARGS),
        (
            "CHG-1",
            "INDPAC",
            "interrogation",
            True,
            "all 1234 metering point(s) active in 2026-04 have 100% of their intervals",
            "interrogation.met",
            {"points": 1234, "month": MONTH},
        ),
        (
            "CHG-1",
            "INDPAC",
            "delivery",
            True,
            "notified 2026-04-03, deadline end of 2026-04-05: 1234 required points, 1234 on time",
            "delivery.counted",
            {**counted, "required": 1234, "on_time": 1234},
        ),
        (
            "CHG-2",
            "INDPAC",
            "notice",
            True,
            "letter 2026-03-20, proposed 2026-04-10: at least 5 business days' notice (earliest allowed 2026-03-27)",
            "notice.met",
            {"letter": "2026-03-20", "proposed": "2026-04-10", "days": 5, "due": "2026-03-27", "closed": None},
        ),
        (
            "CHG-2",
            "INDPAC",
            "interrogation",
            False,
            "no execution date recorded: the change was not carried out, so there is no supply month",
            "interrogation.not_executed",
            {"problem": NO_EXECUTION},
        ),
        (
            "CHG-2",
            "INDPAC",
            "delivery",
            False,
            "no execution date recorded: the change was not carried out; delivery cannot be judged",
            "delivery.not_executed",
            {"problem": NO_EXECUTION},
        ),
        # SOLSUR's rows as a warehouse of an earlier version holds them: no key, the English detail only
        ("CHG-3", "SOLSUR", "notice", True, "letter 2026-03-20, proposed 2026-04-10", None, None),
        ("CHG-3", "SOLSUR", "interrogation", True, "all 1 metering point(s) 100%", None, None),
        ("CHG-3", "SOLSUR", "delivery", True, "all delivered", None, None),
    ]
    review = pl.DataFrame(
        [
            dict(zip(("change_id", "participant", "rule", "ok", "detail", "detail_key"), r[:6]))
            | {"detail_args": json.dumps(r[6]) if r[6] is not None else None}
            for r in review_rows
        ]
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
        "delivery_unreadable_rows": pl.DataFrame(
            {
                "source": ["directamm_deliveries.csv", "vpn_changes.csv"],
                "line": [7, 9],
                "participant": ["INDPAC", "INDPAC"],
                "reason": [
                    "missing received_at in row 'INDPAC,PM-1,2026-04,'; not counted",
                    "change CHG-9: executed_on '2026-04-31' is not a date (YYYY-MM-DD); no month can be reviewed for it",
                ],
                "reason_key": ["unreadable.delivery", "unreadable.change"],
                "reason_args": [
                    json.dumps({"problems": [_fact("blank", column="received_at")], "row": "INDPAC,PM-1,2026-04,"}),
                    json.dumps(
                        {"change_id": "CHG-9", "problem": _fact("not_a_date", column="executed_on", value="2026-04-31")}
                    ),
                ],
            }
        ).with_columns(month=pl.lit(MONTH)),
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
    assert (
        "el cambio no se ejecutó" in indpac.lower() and indpac.count('data-verdict="not_met"') == 2
    )  # CHG-1 + its rule
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


def _cells_text(html: str, selector: str) -> list[str]:
    """The text of each `<td>` of the rows `selector` (a regex of the `<tr ...>` opening) matches."""
    rows = re.findall(rf"<tr {selector}>(.*?)</tr>", html, flags=re.S)
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", row.split("<td>")[-1])).strip() for row in rows]


def _evidence(html: str, change: str, rule: str) -> str:
    table = html[html.index(f'<table class="rules" data-change="{change}">') :]
    table = table[: table.index("</table>")]
    (cell,) = _cells_text(table, f'data-rule="{rule}"')
    return cell


def test_spanish_letter_words_the_evidence_in_spanish(letters):
    """A failed notice rule, a change never executed and two unreadable rows: the evidence and the
    reasons in Spanish, dates DD/MM/AAAA, numbers with comma thousands; no English sentence."""
    html = letters["written"]["INDPAC"].html.read_text()
    # worked out by hand from NOTICE_ARGS: the catalogue's notice.not_met, dates in prose, holidays by name
    assert _evidence(html, "CHG-1", "notice") == (
        "Carta del 01/04/2026, fecha propuesta 03/04/2026: menos de 5 días hábiles de anticipación; la fecha más "
        "temprana permitida era 10/04/2026 (días no hábiles en el intervalo: 02/04/2026, feriado de Jueves Santo; "
        "03/04/2026, feriado de Viernes Santo)"
    )
    assert _evidence(html, "CHG-1", "interrogation").startswith("Los 1,234 punto(s) de medición activos en 2026-04")
    assert _evidence(html, "CHG-1", "delivery") == (
        "Notificado el 03/04/2026, plazo hasta el fin del 05/04/2026; puntos requeridos: 1,234, a tiempo: 1,234, "
        "tarde: 0, no entregados: 0"
    )
    # the change never executed: 'no evaluable' and the evidence in Spanish, which says why (once: no
    # second, generic sentence before it)
    assert _evidence(html, "CHG-2", "interrogation") == (
        "No consta la fecha de ejecución: el cambio no se ejecutó, así que no hay mes de suministro; no se puede "
        "evaluar la interrogación"
    )
    assert 'data-rule="interrogation"><td>' in html
    reasons = re.findall(r'<td class="n">\d+</td><td>(.*?)</td></tr>', html[html.index('id="unreadable"') :])
    reasons = [htmllib.unescape(re.sub(r"<[^>]+>", "", r)) for r in reasons]
    assert reasons == [
        "Falta la fecha y hora de recepción en la fila «INDPAC,PM-1,2026-04,»; no se cuenta",
        "Cambio CHG-9: la fecha de ejecución «2026-04-31» no es una fecha (AAAA-MM-DD); no se puede revisar en ningún mes",
    ]
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", html))
    for phrase in ENGLISH:
        assert phrase not in text, phrase
    # identifiers and dates in the evidence stay whole on one line
    assert '<span class="nb">01/04/2026</span>' in html and '<span class="nb">CHG-9</span>' in html


def test_english_letter_words_the_evidence_in_english(letters):
    files = delivery.render(Month.parse(MONTH), lang="en", warehouse=letters["wh"], lake_root=letters["lake"])
    html = files["INDPAC"].html.read_text()
    assert _evidence(html, "CHG-1", "notice") == (
        "Letter 01/04/2026, proposed 03/04/2026: less than 5 business days' notice; earliest allowed 10/04/2026 "
        "(not business days in between: 02/04/2026, public holiday: Maundy Thursday; 03/04/2026, public holiday: "
        "Good Friday)"
    )
    assert _evidence(html, "CHG-1", "delivery").startswith("Notified 03/04/2026, deadline end of 05/04/2026: 1,234")
    text = htmllib.unescape(re.sub(r"<[^>]+>", "", html))
    assert "Missing time received in row 'INDPAC,PM-1,2026-04,'; not counted" in text
    assert "Jueves Santo" not in text and "no se cuenta" not in text


def test_a_row_published_before_evidence_keys_shows_its_detail(letters):
    """SOLSUR's rows have no key (a warehouse written by an earlier version): the letter shows the
    English detail it has, never an empty cell (re-running the month words it)."""
    html = letters["written"]["SOLSUR"].html.read_text()
    assert _evidence(html, "CHG-3", "delivery") == "all delivered"


def test_every_evidence_key_the_pipeline_publishes_is_in_both_catalogues():
    """The keys are literals in the delivery pipeline (pl.lit("notice.met"), fact("no_date", ...)):
    each must be worded in both languages, or a letter would fail to render."""
    root = Path(delivery.__file__).parents[1] / "delivery"
    source = "".join((root / name).read_text() for name in ("rules.py", "compliance.py", "job.py", "estimation.py"))
    keys = set(
        re.findall(
            r'pl\.lit\("((?:notice|metering_period|approvals|interrogation|delivery|unreadable)\.\w+)"\)', source
        )
    )
    keys |= set(re.findall(r'\bfact\(\s*"(\w+)"', source))
    keys |= set(re.findall(r'pl\.lit\("(point_below|point_unknown)"\)', source))
    keys |= {k for k in re.findall(r'"(estimation\.\w+)"', source) if not k.endswith("_")}
    keys |= {f"estimation.basis_{kind}" for kind in ("consumption", "generation")}  # basis_ + the point's kind
    assert len(keys) >= 40, sorted(keys)
    for lang in LANGUAGES:
        missing = [k for k in keys if not words(lang).has(f"evidence.{k}")]
        assert not missing, (lang, missing)
    # the day kinds the business-day calendar gives and the columns a fact names
    for lang in LANGUAGES:
        for kind in ("saturday", "sunday", "holiday", "nonworking"):
            assert words(lang).has(f"evidence.day.{kind}")
        for column in set(re.findall(r'column="(\w+)"', source)) | set(re.findall(r'\w_fact\(\s*"(\w+)"', source)):
            if column.endswith(("_date", "_on")):
                assert words(lang).has(f"evidence.column.{column}"), column


def test_a_vee_example_is_worded_in_the_readers_language():
    from datetime import datetime

    from pipelines.reports.i18n import words
    from pipelines.reports.meters import _example

    row = {
        "point_id": "PM-001",
        "interval_end": datetime(2026, 4, 2, 12, 0),
        "channel": "kwh_del",
        "rule": "above_max",
        "detail": "6250.5 above the plausible maximum 5000.0",
        "value": 6250.5,
    }
    assert _example(words("es"), row) == (
        "PM-001, 2026-04-02 12:00, kwh_del [kWh]: 6,250.50, por encima del máximo plausible del punto por intervalo"
    )
    assert _example(words("en"), row) == (
        "PM-001, 2026-04-02 12:00, kwh_del [kWh]: 6,250.50, above the point's plausible maximum per interval"
    )
    # a rule the catalogue does not know yet keeps its stored detail
    assert _example(words("es"), {**row, "rule": "new_rule"}).endswith(": 6250.5 above the plausible maximum 5000.0")
