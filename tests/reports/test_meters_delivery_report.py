"""The metering month report and the delivery letters in a real headless Chromium, from tables
published through the run skeleton: figures equal the warehouse's (percentages floored to 2
decimals), a month never published exits 2, --as-of renders a past snapshot's letters, a letter is
a letter (date, reference, sender, addressee, signatory; the run id only in the footer)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from pipelines import cli, warehouse
from pipelines.delivery.job import SCHEMAS
from pipelines.errors import MayoristaError
from pipelines.periods import Month
from pipelines.reports import delivery, meters
from tests.reports.conftest import assert_clean, cells, needs_chromium, number, publish

pytestmark = needs_chromium
MONTH = "2026-04"
CHANNELS = ["kvarh_del", "kvarh_rec", "kwh_del", "kwh_rec"]


def metering_tables() -> dict[str, pl.DataFrame]:
    """P1 complete; P2 missing 10 hours on 2026-04-10 (one hour estimated); P3 active from 2026-04-16."""
    days = {"P1": 30, "P2": 30, "P3": 15}
    completeness, hourly = [], []
    for point, active in days.items():
        missing = 10 * 4 if point == "P2" else 0
        for ch in CHANNELS:
            expected = active * 96
            completeness.append(
                {
                    "point_id": point,
                    "participant": "ALFA",
                    "kind": "consumption",
                    "month": MONTH,
                    "channel": ch,
                    "expected_intervals": expected,
                    "received_intervals": expected - missing,
                    "completeness_pct": 100.0 * (expected - missing) / expected,
                }
            )
            start = datetime(2026, 4, 16) if point == "P3" else datetime(2026, 4, 1)
            for h in range(active * 24):
                hour = start + timedelta(hours=h)
                gap = point == "P2" and hour.date() == date(2026, 4, 10) and hour.hour < 10
                if gap and hour.hour != 3:
                    continue
                hourly.append(
                    {
                        "point_id": point,
                        "participant": "ALFA",
                        "month": MONTH,
                        "hour": hour,
                        "channel": ch,
                        "value": 1.0,
                        "quality": "estimated" if gap else "complete",
                        "real_intervals": 0 if gap else 4,
                        "estimated_intervals": 4 if gap else 0,
                    }
                )
    findings = pl.DataFrame(
        {
            "point_id": ["P2", "P2", "P1"],
            "participant": ["ALFA"] * 3,
            "month": [MONTH] * 3,
            "interval_end": [datetime(2026, 4, 10, 10)] * 2 + [datetime(2026, 4, 2, 12)],
            "channel": ["kwh_del", "kwh_rec", "kwh_del"],
            "rule": ["gap", "gap", "spike"],
            "detail": ["40 interval(s) missing", "40 interval(s) missing", "2377.0 against neighbours"],
            "value": [None, None, 2377.0],
        }
    )
    points = pl.DataFrame(
        {
            "point_id": ["P1", "P2", "P3"],
            "valid_from": [date(2025, 1, 1), date(2025, 1, 1), date(2026, 4, 16)],
            "valid_to": [None, None, None],
        },
        schema_overrides={"valid_to": pl.Date},
    )
    return {
        "meter_completeness": pl.DataFrame(completeness),
        "meter_hourly": pl.DataFrame(hourly),
        "vee_findings": findings,
    }, points


def test_meters_report(tmp_path, open_report):
    wh, lake = tmp_path / "w.sqlite", tmp_path / "lake"
    tables, points = metering_tables()
    run_id, snapshot = publish("meters", MONTH, tables, "month", wh, lake)
    publish("meters", "2026-05", {"metering_points": points.with_columns(month=pl.lit("2026-05"))}, "month", wh, lake)
    (files,) = meters.render(Month.parse(MONTH), warehouse=wh, lake_root=lake)
    assert files.pdf is not None and files.pdf.read_bytes().startswith(b"%PDF")
    seen = open_report(files.html)
    assert_clean(seen, files.html)
    page = seen.page
    totals = warehouse.query(
        "SELECT sum(received_intervals) / sum(expected_intervals) * 100 AS pct, count(DISTINCT point_id) AS n "
        f"FROM meter_completeness WHERE month = '{MONTH}'",
        wh,
    ).row(0, named=True)
    # percentages are floored to 2 decimals (the documents' rule), never rounded up
    assert number(page.inner_text("#kpi-pct")) == math.floor(totals["pct"] * 100) / 100
    assert page.inner_text("#kpi-points") == "3"
    least = cells(page, "#least tr[data-point]")
    assert [r[0] for r in least] == ["P2"]  # P1 and P3 are complete (P3 over its active days)
    assert least[0][4] == "98.61 %"  # 2840 / 2880 = 98.6111 %
    assert {r[0]: r[1] for r in cells(page, "#rules tr[data-rule]")} == {"gap": "2", "spike": "1"}
    estimated = cells(page, "#estimated tr")[1:]
    assert len(estimated) == 4 and all(r[0] == "P2" and r[2] == "1" and r[3] == "4" for r in estimated)
    assert page.locator("figure svg").count() == 2 and run_id in page.inner_text("body")
    # the VEE example names its point, interval and channel with its unit
    spike = {r[0]: r[3] for r in cells(page, "#rules tr[data-rule]")}["spike"]
    # in words of the reader's language, the value as the documents write numbers
    assert spike == "P1, 2026-04-02 12:00, kwh_del [kWh]: 2,377.00, pico frente a los intervalos vecinos"
    assert page.evaluate("document.documentElement.lang") == "es"


def test_meters_month_never_published_exits_2(tmp_path, capsys):
    wh, lake = tmp_path / "w.sqlite", tmp_path / "lake"
    tables, _ = metering_tables()
    publish("meters", MONTH, tables, "month", wh, lake)
    with pytest.raises(MayoristaError, match="2026-06 has no published run"):
        meters.render(Month.parse("2026-06"), warehouse=wh, lake_root=lake)
    assert cli.main(["report", "meters", "--month", "2026-06", "--warehouse", str(wh), "--lake", str(lake)]) == 2
    assert cli.main(["report", "delivery", "--month", "2026-06", "--warehouse", str(wh), "--lake", str(lake)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("mayorista report: error: ") for line in err)
    assert not (lake / "reports" / "meters" / "month=2026-06").exists()


def _delivery_tables(ok: bool) -> dict[str, pl.DataFrame]:
    review = pl.DataFrame(
        {
            "month": [MONTH] * 2,
            "change_id": ["CHG-1"] * 2,
            "participant": ["A/B"] * 2,
            "rule": ["notice", "delivery"],
            "ok": [True, ok],
            "line": [2, 2],
            "detail": ["letter 2026-04-06, proposed 2026-04-21", "notified 2026-04-20, deadline end of 2026-04-22"],
            "detail_key": ["notice.met", "delivery.counted"],
            "detail_args": [
                json.dumps({"letter": "2026-04-06", "proposed": "2026-04-21", "days": 5, "due": "2026-04-13"}),
                json.dumps(
                    {
                        "notified": "2026-04-20",
                        "deadline": "2026-04-22",
                        "required": 2,
                        "on_time": 2 if ok else 1,
                        "late": 0,
                        "missing": 0 if ok else 1,
                    }
                ),
            ],
        }
    )
    compliance = pl.DataFrame(
        {
            "month": [MONTH],
            "change_id": ["CHG-1"],
            "participant": ["A/B"],
            "supply_month": [MONTH],
            "notified_on": [date(2026, 4, 20)],
            "deadline": [date(2026, 4, 22)],
            "required_points": [2],
            "on_time_points": [2 if ok else 1],
            "late_points": [0],
            "missing_points": [0 if ok else 1],
            "compliant": [ok],
        }
    )
    points = pl.DataFrame(
        {
            "month": [MONTH],
            "change_id": ["CHG-1"],
            "participant": ["A/B"],
            "point_id": ["PM-2"],
            "kind": ["consumption"],
            "status": ["on_time" if ok else "missing"],
            "received_at": [None],
            "deliveries": [0],
            "deadline": [date(2026, 4, 22)],
            "estimation": [None if ok else "estimated all 720 hours (previous-month kwh_del +10%)"],
            "estimation_key": [None if ok else "estimation.all"],
            "estimation_args": [
                None
                if ok
                else json.dumps(
                    {
                        "hours": 720,
                        "basis": {"key": "estimation.basis_consumption", "previous": "2026-03", "channel": "kwh_del"},
                    }
                )
            ],
        }
    )
    unreadable = pl.DataFrame(
        {
            "month": [MONTH],
            "source": ["directamm_deliveries.csv"],
            "line": [7],
            "participant": ["A/B"],
            "reason": ["missing received_at in row 'A/B,PM-2,2026-04,'; not counted"],
            "reason_key": ["unreadable.delivery"],
            "reason_args": [
                json.dumps({"problems": [{"key": "blank", "column": "received_at"}], "row": "A/B,PM-2,2026-04,"})
            ],
        }
    )
    frames = {
        "vpn_change_review": review,
        "delivery_compliance": compliance,
        "delivery_points": points,
        "estimated_hourly": pl.DataFrame(schema=SCHEMAS["estimated_hourly"]).with_columns(month=pl.lit(MONTH)),
        "delivery_unreadable_rows": unreadable,
    }
    return {n: f.select(pl.col(c).cast(t) for c, t in SCHEMAS[n].items()) for n, f in frames.items()}


def test_delivery_letters_current_and_as_of(tmp_path, open_report):
    wh, lake = tmp_path / "w.sqlite", tmp_path / "lake"
    first, _ = publish("delivery", MONTH, _delivery_tables(ok=False), "month", wh, lake)
    publish("delivery", MONTH, _delivery_tables(ok=True), "month", wh, lake)
    current = delivery.render(Month.parse(MONTH), warehouse=wh, lake_root=lake)["A/B"]
    assert current.html.name == "A%2FB.html" and current.pdf is not None and current.pdf.name == "A%2FB.pdf"
    seen = open_report(current.html)
    assert_clean(seen, current.html)
    assert seen.page.eval_on_selector_all("table.rules .verdict", "v => v.map(e => e.innerText)") == ["cumple"] * 2
    past = delivery.render(Month.parse(MONTH), warehouse=wh, lake_root=lake, as_of=first)["A/B"]
    assert past.html.parent.parent.name == f"as-of={first}"
    seen = open_report(past.html)
    assert_clean(seen, past.html)
    rules = {r[0]: r[1] for r in cells(seen.page, "table.rules tr[data-rule]")}
    assert (
        rules[
            "Todos los puntos entregados por Direct@mm dentro de 2 días calendario de la notificación (NCC-14, 14.10)"
        ]
        == "no cumple"
    )
    body = seen.page.inner_text("body")
    assert "Puntos requeridos: 2; a tiempo: 1; tarde: 0; no entregados: 1." in body and "no entregado" in body
    assert "notificado el 20/04/2026; plazo: fin del día 22/04/2026" in body  # prose dates DD/MM/AAAA
    # the unreadable row's reason and the rule's evidence in Spanish, never the analysts' English
    assert "Falta la fecha y hora de recepción en la fila «A/B,PM-2,2026-04,»; no se cuenta" in body
    assert (
        "Notificado el 20/04/2026, plazo hasta el fin del 22/04/2026; puntos requeridos: 2, a tiempo: 1, tarde: 0"
        in body
    )
    assert "Estimadas las 720 horas (kwh_del de 2026-03 +10 %)" in body
    assert "not counted" not in body and "deadline end" not in body and "estimated all" not in body
    # a letter: addressee, reference, letter date, signatory; the run id only in the footer
    assert seen.page.inner_text("#addressee") == "A/B"
    assert seen.page.inner_text("#reference").startswith("AMM-SMEC-202604-P")
    letter_date = seen.page.inner_text("#letter-date")
    assert len(letter_date) == 10 and letter_date[2] == "/" and letter_date[5] == "/"
    assert "Jefatura de Medición Comercial" in body
    assert first not in seen.page.inner_text("main") and first in seen.page.inner_text("footer")
