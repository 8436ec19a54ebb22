"""check_month end to end (GX suites, warehouse, lake, reports) on the sample generator's output for a
tiny registry, and the bad inputs that must stop the run or be reported."""

from __future__ import annotations

import html as htmllib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines import cli, warehouse
from pipelines.delivery import sample
from pipelines.delivery.job import check_month
from pipelines.errors import InputError, ValidationFailed
from pipelines.periods import Month
from pipelines.warehouse import Write
from tests.delivery.fixtures import write_sample_registry


def march_meter_hourly(points: list[str]) -> pl.DataFrame:
    """kwh_del = 2.0 every hour of March 2026 except 31 March, which is 3.0."""
    hours = [datetime(2026, 3, 1) + timedelta(hours=h) for h in range(31 * 24)]
    return pl.DataFrame({"point_id": [p for p in points for _ in hours], "hour": hours * len(points)}).with_columns(
        channel=pl.lit("kwh_del"),
        value=pl.when(pl.col("hour").dt.day() == 31).then(3.0).otherwise(2.0),
        quality=pl.lit("measured"),
    )


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    directory = tmp_path / "smec"
    write_sample_registry(directory)
    sample.generate(directory)
    return directory


def test_sample_month_end_to_end(inputs: Path, workspace: Path) -> None:
    db = workspace / "warehouse.sqlite"
    warehouse.publish([Write("meter_hourly", march_meter_hourly(["PM-ALFA-0", "PM-ALFA-OLD"]))], db)
    result = check_month("2026-04", inputs)

    review = warehouse.query("SELECT change_id, rule, ok FROM vpn_change_review WHERE month = '2026-04'", db)
    failed = {(c, r) for c, r, ok in review.rows() if not ok}
    # the sample's promises (see pipelines/delivery/sample.py), participants picked from this registry
    assert failed == {
        ("CHG-2604-02", "notice"),
        ("CHG-2604-02", "delivery"),
        ("CHG-2604-03", "notice"),
        ("CHG-2604-03", "metering_period"),
        ("CHG-2604-04", "approvals"),
        ("CHG-2604-04", "delivery"),
        ("CHG-2604-05", "delivery"),
    } | {(f"CHG-2604-0{i}", "interrogation") for i in range(1, 6)}  # no meter_completeness in this warehouse
    assert review.height == 5 * 5

    compliance = warehouse.query(
        "SELECT change_id, participant, deadline::VARCHAR AS deadline, required_points, on_time_points, late_points, "
        "missing_points, compliant FROM delivery_compliance ORDER BY change_id",
        db,
    )
    assert compliance.rows() == [
        ("CHG-2604-01", "BETA", "2026-04-24", 3, 3, 0, 0, True),
        # ALFA: PM-ALFA-0 late (23 Apr 08:15), PM-ALFA-1 at 23:59 of the deadline day, OLD (retired 5 Apr) missing
        ("CHG-2604-02", "ALFA", "2026-04-22", 4, 2, 1, 1, False),
        ("CHG-2604-03", "EPS", "2026-04-11", 4, 4, 0, 0, True),
        ("CHG-2604-04", "DELTA", "2026-04-29", 4, 3, 0, 1, False),
    ]
    points = warehouse.query("SELECT change_id, point_id, status, deliveries FROM delivery_points", db)
    status = {(c, p): s for c, p, s, _ in points.rows()}
    assert status[("CHG-2604-02", "PM-ALFA-1")] == "on_time"
    assert status[("CHG-2604-03", "PM-UNKNOWN-01")] == "unknown_point"
    assert status[("CHG-2604-03", "PM-BETA-0")] == "not_required"
    assert {(c, p): n for c, p, _, n in points.rows()}[("CHG-2604-01", "PM-BETA-0")] == 2

    est = warehouse.query("SELECT point_id, hour, kwh FROM estimated_hourly WHERE month = '2026-04'", db)
    kwh = {(p, h): v for p, h, v in est.rows()}
    assert est.filter(pl.col("point_id") == "PM-ALFA-0").height == 30 * 24
    assert est.filter(pl.col("point_id") == "PM-ALFA-OLD").height == 5 * 24  # active 1-5 April
    assert kwh[("PM-ALFA-0", datetime(2026, 4, 30, 5))] == pytest.approx(2.0 * 1.10)
    # generation from the sample's dispatch: 800 + 40 * 1 + 350 (06-18 h) + (15 % 7) * 5 = 1195 -> -5%
    assert kwh[("PM-DELTA-G", datetime(2026, 4, 15, 12))] == pytest.approx(1195 * 0.95)
    assert kwh[("PM-DELTA-G", datetime(2026, 4, 15, 3))] == pytest.approx((800 + 40 + 5) * 0.95)

    checks = warehouse.query("SELECT \"check\", success FROM validation_results WHERE pipeline = 'delivery'", db)
    assert checks.height == 12 and checks.filter(~pl.col("success")).height == 2  # bad date row, unknown point
    report = Path(result.reports["ALFA"])
    assert report.parent.name == "month=2026-04" and report.parent.parent.name == "delivery"
    text = report.read_text()
    assert "CHG-2604-02" in text and "no cumple" in text and "PM-ALFA-OLD" in text and "no entregado" in text
    assert str(report) in result.summary
    assert "CHG-2604-02" in result.summary and "late or missing points: 3" in result.summary
    assert list((workspace / "lake" / "main" / "vpn_change_review" / "month=2026-04").glob("ducklake-*.parquet"))

    # a re-run replaces the month; another month's run leaves it alone
    check_month("2026-04", inputs)
    check_month("2026-03", inputs)
    counts = warehouse.query(
        "SELECT (SELECT count(*) FROM vpn_change_review WHERE month = '2026-04') AS review, "
        "(SELECT count(*) FROM estimated_hourly WHERE month = '2026-04') AS est, "
        "(SELECT count(*) FROM run_manifests WHERE pipeline = 'delivery') AS runs, "
        "(SELECT count(*) FROM vpn_change_review WHERE month = '2026-03') AS march",
        db,
    )
    assert counts.rows() == [(25, 30 * 24 + 5 * 24 + 30 * 24, 3, 5)]  # one run_manifests row per run


def test_duplicate_change_id_stops_the_run(inputs: Path, workspace: Path) -> None:
    changes = pl.read_csv(inputs / "vpn_changes.csv", infer_schema=False)
    pl.concat([changes, changes.head(1)]).write_csv(inputs / "vpn_changes.csv")
    with pytest.raises(ValidationFailed, match=r"expect_column_values_to_be_unique \[change_id\]"):
        check_month("2026-04", inputs)
    tables = warehouse.table_names(workspace / "warehouse.sqlite")
    assert "vpn_change_review" not in tables and "delivery_compliance" not in tables
    failed = warehouse.query("SELECT status, snapshot_id, manifest FROM run_manifests")
    assert failed.rows()[0][:2] == ("failed", None) and "change_id" in failed["manifest"][0]


def test_bad_rows_are_judged_false_and_reported(inputs: Path, workspace: Path) -> None:
    changes = pl.read_csv(inputs / "vpn_changes.csv", infer_schema=False)
    extra = pl.DataFrame(
        [
            {**changes.row(1, named=True), "change_id": "NOLETTER", "letter_date": None},
            {**changes.row(1, named=True), "change_id": "STRANGER", "participant": "ZETA"},
            {**changes.row(1, named=True), "change_id": "GARBLED", "executed_on": "21/04/2026"},
        ]
    )
    pl.concat([changes, extra]).write_csv(inputs / "vpn_changes.csv")
    result = check_month("2026-04", inputs)
    review = {(c, r): (ok, d) for c, r, ok, d in result.review.select("change_id", "rule", "ok", "detail").rows()}
    assert review[("NOLETTER", "notice")] == (False, "no letter date recorded: notice cannot be checked")
    assert review[("STRANGER", "delivery")][0] is False
    warnings = {(c.check, c.column) for c in result.validation if not c.success}
    assert ("expect_column_values_to_be_in_set", "participant") in warnings
    assert ("expect_column_values_to_not_be_null", "letter_date") in warnings
    assert ("expect_column_values_to_be_null", "parse_error") in warnings
    # the garbled row cannot be placed in a month: reported by name and line, in the summary and report
    assert "vpn_changes.csv line 10: change GARBLED: executed_on '21/04/2026' is not a date" in result.summary
    assert "GARBLED" in Path(result.reports["BETA"]).read_text()  # row 1 of the sample is BETA's


def test_missing_input_and_bad_month(tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture) -> None:
    write_sample_registry(tmp_path)
    with pytest.raises(InputError, match="missing input file vpn_changes.csv"):
        check_month("2026-04", tmp_path)
    with pytest.raises(InputError, match="YYYY-MM"):
        check_month("2026-4", tmp_path)
    assert cli.main(["delivery", "check", "--month", "2026-04", "--input", str(tmp_path)]) == 2
    assert "missing input file vpn_changes.csv" in capsys.readouterr().err


def test_deliveries_missing_a_column(inputs: Path, workspace: Path) -> None:
    pl.read_csv(inputs / "directamm_deliveries.csv", infer_schema=False).drop("received_at").write_csv(
        inputs / "directamm_deliveries.csv"
    )
    with pytest.raises(InputError, match="directamm_deliveries.csv: missing column.*received_at"):
        check_month("2026-04", inputs)


def test_a_month_without_changes_then_one_with(inputs: Path, workspace: Path) -> None:
    # the first publication ever is an empty month: the tables must still get their real column types
    may = check_month("2026-05", inputs)
    assert may.summary.startswith("delivery 2026-05: 0 VPN change(s) reviewed")
    assert may.unreadable.height == 0  # April's bad delivery row is April's business
    check_month("2026-04", inputs)
    db = workspace / "warehouse.sqlite"
    assert warehouse.query("SELECT count(*) AS n FROM delivery_compliance", db)["n"][0] == 4
    types = dict(
        warehouse.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'estimated_hourly'", db
        ).rows()
    )
    assert types["kwh"] == "DOUBLE" and types["hour"] == "TIMESTAMP"


def test_delivery_rows_with_blanks_are_reported_not_counted(inputs: Path, workspace: Path) -> None:
    deliveries = pl.read_csv(inputs / "directamm_deliveries.csv", infer_schema=False)
    # ALFA's on-time PM-ALFA-2 row loses its timestamp: the point becomes missing, the row is reported
    deliveries = deliveries.with_columns(
        received_at=pl.when(pl.col("point_id") == "PM-ALFA-2").then(None).otherwise(pl.col("received_at"))
    )
    deliveries.write_csv(inputs / "directamm_deliveries.csv")
    result = check_month("2026-04", inputs)
    row = result.compliance.filter(pl.col("change_id") == "CHG-2604-02").row(0, named=True)
    assert (row["on_time_points"], row["late_points"], row["missing_points"]) == (1, 1, 2)
    reasons = result.unreadable.filter(pl.col("participant") == "ALFA")["reason"].to_list()
    assert reasons == ["missing received_at in row 'ALFA,PM-ALFA-2,2026-04,'; not counted"]
    # the letter words the reason in Spanish (the English `reason` stays in the warehouse for analysts)
    letter = _text(Path(result.reports["ALFA"]).read_text())
    assert "Falta la fecha y hora de recepción en la fila «ALFA,PM-ALFA-2,2026-04,»; no se cuenta" in letter
    assert "not counted" not in letter


def _text(html: str) -> str:
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)))


def test_letters_word_the_evidence_in_the_readers_language(inputs: Path, workspace: Path) -> None:
    """End to end: the run publishes each evidence with its key and values, and the letters word them.
    ALFA: CHG-2604-02's notice is too short (letter Tue 14 April + 5 business days = Tue 21 April; the
    change was proposed for Fri 17 April), a change row whose execution date is no date. BETA:
    CHG-2604-05 was never executed (no evaluable)."""
    changes = pl.read_csv(inputs / "vpn_changes.csv", infer_schema=False)
    extra = changes.filter(pl.col("change_id") == "CHG-2604-02").with_columns(
        change_id=pl.lit("CHG-2604-09"), executed_on=pl.lit("2026-04-31")
    )
    pl.concat([changes, extra]).write_csv(inputs / "vpn_changes.csv")
    result = check_month("2026-04", inputs)
    db = workspace / "warehouse.sqlite"
    stored = warehouse.query(
        "SELECT detail, detail_key, detail_args FROM vpn_change_review "
        "WHERE change_id = 'CHG-2604-02' AND rule = 'notice'",
        db,
    ).row(0, named=True)
    assert stored["detail"].startswith("letter 2026-04-14, proposed 2026-04-17: less than 5 business days")
    assert stored["detail_key"] == "notice.not_met"
    assert json.loads(stored["detail_args"]) == {
        "problem": None,
        "letter": "2026-04-14",
        "proposed": "2026-04-17",
        "days": 5,
        "due": "2026-04-21",
        "closed": None,
    }
    unplaced = warehouse.query(
        "SELECT reason, reason_key, reason_args FROM delivery_unreadable_rows WHERE source LIKE 'vpn_changes%'", db
    ).row(0, named=True)
    assert unplaced["reason"] == (
        "change CHG-2604-09: executed_on '2026-04-31' is not a date (YYYY-MM-DD); no month can be reviewed for it"
    )
    assert unplaced["reason_key"] == "unreadable.change"
    assert json.loads(unplaced["reason_args"])["problem"]["key"] == "not_a_date"

    alfa = _text(Path(result.reports["ALFA"]).read_text())
    assert (
        "Carta del 14/04/2026, fecha propuesta 17/04/2026: menos de 5 días hábiles de anticipación; "
        "la fecha más temprana permitida era 21/04/2026"
    ) in alfa
    assert (
        "Cambio CHG-2604-09: la fecha de ejecución «2026-04-31» no es una fecha (AAAA-MM-DD); "
        "no se puede revisar en ningún mes"
    ) in alfa
    beta = _text(Path(result.reports["BETA"]).read_text())
    assert (
        "No consta la fecha de ejecución: el cambio no se ejecutó, así que no hay mes de suministro que entregar; "
        "no se puede evaluar la entrega"
    ) in beta
    for letter in (alfa, beta):
        for english in (
            "business days",
            "earliest allowed",
            "no month can be reviewed",
            "not counted",
            "cannot be judged",
            "was not carried out",
            "metering point(s)",
            "is not a date",
        ):
            assert english not in letter, english

    # --lang en: the same evidence in English, beside the Spanish letters
    from pipelines.reports import delivery as letters

    files = letters.render(Month.parse("2026-04"), lang="en")
    english = _text(files["ALFA"].html.read_text())
    assert (
        "Letter 14/04/2026, proposed 17/04/2026: less than 5 business days' notice; earliest allowed 21/04/2026"
    ) in english
    assert "menos de 5 días hábiles" not in english


def test_interrogation_reads_meter_completeness_from_the_warehouse(inputs: Path, workspace: Path) -> None:
    """Rule 6(a) end to end: BETA (CHG-2604-01) complete; ALFA (CHG-2604-02) with PM-ALFA-0 at 99.9%."""
    db = workspace / "warehouse.sqlite"
    points = {
        "PM-BETA-0": 30,
        "PM-BETA-1": 30,
        "PM-BETA-2": 30,
        "PM-ALFA-0": 30,
        "PM-ALFA-1": 30,
        "PM-ALFA-2": 30,
        "PM-ALFA-OLD": 5,
    }  # OLD retires 5 April
    rows = [
        (p, "2026-04", c, days * 96, days * 96 - (3 if (p, c) == ("PM-ALFA-0", "kwh_del") else 0))
        for p, days in points.items()
        for c in ("kwh_del", "kwh_rec", "kvarh_del", "kvarh_rec")
    ]
    frame = pl.DataFrame(
        rows, schema=["point_id", "month", "channel", "expected_intervals", "received_intervals"], orient="row"
    ).with_columns(completeness_pct=(100.0 * pl.col("received_intervals") / pl.col("expected_intervals")).round(4))
    warehouse.publish([Write("meter_completeness", frame, {"month": "2026-04"}, ("month",))], db)
    result = check_month("2026-04", inputs)
    review = {
        c: (ok, d)
        for c, r, ok, d in result.review.select("change_id", "rule", "ok", "detail").rows()
        if r == "interrogation"
    }
    assert review["CHG-2604-01"] == (
        True,
        "all 3 metering point(s) active in 2026-04 have 100% of their intervals "
        "on all four channels from real readings",
    )
    assert review["CHG-2604-02"] == (
        False,
        "1 of 4 metering point(s) below 100% in 2026-04 (real readings; channels "
        "short in brackets): PM-ALFA-0 99.89% (kwh_del)",
    )
    stored = warehouse.query(
        "SELECT change_id, ok FROM vpn_change_review WHERE rule = 'interrogation' "
        "AND month = '2026-04' ORDER BY change_id",
        db,
    )
    assert stored.rows()[:2] == [("CHG-2604-01", True), ("CHG-2604-02", False)]
    assert "interrogation" in result.summary
