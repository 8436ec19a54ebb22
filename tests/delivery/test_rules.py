"""VPN-change rules and Direct@mm delivery compliance on hand-made cases (expected values worked out
by hand from the April 2026 calendar: 2-3 April are holidays, the first 7 business days are
1, 6, 7, 8, 9, 10 and 13 April)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl

from pipelines.delivery import sources
from pipelines.delivery.job import Judgement, judge
from pipelines.metering.registry import load_registry
from pipelines.periods import Month
from tests.delivery.fixtures import write_registry

CHANGE = {  # compliant with every rule: the starting point each test alters
    "change_id": "C1",
    "participant": "ALFA",
    "vpn_id": "VPN-ALFA",
    "letter_date": "2026-04-06",
    "proposed_date": "2026-04-21",
    "medicion_approved_on": "2026-04-08",
    "tecnologia_approved_on": "2026-04-09",
    "executed_on": "2026-04-21",
    "notified_on": "2026-04-22",
}


def write_changes(directory: Path, changes: list[dict]) -> None:
    pl.DataFrame([{**CHANGE, **c} for c in changes], schema=dict.fromkeys(CHANGE, pl.String)).write_csv(
        directory / "vpn_changes.csv"
    )


def write_deliveries(directory: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """rows: (participant, point_id, supply_month, received_at)."""
    pl.DataFrame(
        rows, schema=dict.fromkeys(["participant", "point_id", "supply_month", "received_at"], pl.String), orient="row"
    ).write_csv(directory / "directamm_deliveries.csv")


ALFA_POINTS = [("P1", "ALFA", "consumption", "2025-01-01", ""), ("P2", "ALFA", "generation", "2025-01-01", "")]


def run(
    tmp_path: Path,
    changes: list[dict],
    deliveries: list[tuple] = (),
    points=ALFA_POINTS,
    month: str = "2026-04",
    completeness: pl.DataFrame | None = None,
    note: str | None = None,
) -> Judgement:
    write_registry(tmp_path, points)
    write_changes(tmp_path, changes)
    write_deliveries(tmp_path, list(deliveries))
    return judge(
        Month.parse(month),
        load_registry(tmp_path),
        sources.read_changes(tmp_path).rows,
        sources.read_deliveries(tmp_path).good(),
        completeness=completeness,
        completeness_note=note,
    )


def completeness(
    received: dict[tuple[str, str], int],
    points: tuple[str, ...] = ("P1", "P2"),
    month: str = "2026-04",
    expected: int = 2880,
) -> pl.DataFrame:
    """meter_completeness rows: every channel of every point complete unless `received` says otherwise."""
    channels = ("kwh_del", "kwh_rec", "kvarh_del", "kvarh_rec")
    return pl.DataFrame(
        [(p, month, c, expected, received.get((p, c), expected)) for p in points for c in channels],
        schema=["point_id", "month", "channel", "expected_intervals", "received_intervals"],
        orient="row",
    )


def verdict(j: Judgement, rule: str, change_id: str = "C1") -> tuple[bool, str]:
    row = j.review.filter((pl.col("change_id") == change_id) & (pl.col("rule") == rule))
    assert row.height == 1, f"expected one {rule} row for {change_id}, got {row.height}"
    return row["ok"][0], row["detail"][0]


def statuses(j: Judgement, change_id: str = "C1") -> dict[str, str]:
    rows = j.points.filter(pl.col("change_id") == change_id)
    return dict(zip(rows["point_id"], rows["status"]))


# --- notice: proposed_date >= letter_date + 5 business days -------------------------------------------


def test_notice_exactly_five_business_days_is_enough(tmp_path: Path) -> None:
    # Mon 13 Apr + 5 business days: 14, 15, 16, 17, 20 -> 20 Apr
    j = run(tmp_path, [{"letter_date": "2026-04-13", "proposed_date": "2026-04-20"}])
    ok, detail = verdict(j, "notice")
    assert ok and "earliest allowed 2026-04-20" in detail
    ok, detail = verdict(run(tmp_path, [{"letter_date": "2026-04-14", "proposed_date": "2026-04-20"}]), "notice")
    assert not ok and "earliest allowed 2026-04-21" in detail


def test_notice_counts_holy_week_as_non_business(tmp_path: Path) -> None:
    # Mon 30 Mar + 5: 31 Mar, 1 Apr, 6, 7, 8 Apr (2-3 Apr holidays); without them 7 Apr would do
    j = run(
        tmp_path,
        [
            {"change_id": "C1", "letter_date": "2026-03-30", "proposed_date": "2026-04-07"},
            {"change_id": "C2", "letter_date": "2026-03-30", "proposed_date": "2026-04-08"},
        ],
    )
    ok, detail = verdict(j, "notice", "C1")
    assert not ok
    assert "earliest allowed 2026-04-08" in detail and "Maundy Thursday" in detail and "Good Friday" in detail
    assert verdict(j, "notice", "C2")[0]


# --- metering period: not within the first 7 business days (effective date) -----------------------------


def test_seventh_business_day_is_inside_eighth_is_outside(tmp_path: Path) -> None:
    base = {"letter_date": "2026-03-20", "medicion_approved_on": "2026-03-25", "tecnologia_approved_on": "2026-03-25"}
    j = run(
        tmp_path,
        [
            {
                **base,
                "change_id": "C1",
                "proposed_date": "2026-04-13",
                "executed_on": "2026-04-13",
                "notified_on": "2026-04-14",
            },
            {
                **base,
                "change_id": "C2",
                "proposed_date": "2026-04-14",
                "executed_on": "2026-04-14",
                "notified_on": "2026-04-15",
            },
        ],
    )
    ok, detail = verdict(j, "metering_period", "C1")
    assert not ok and "business day 7 of 2026-04" in detail and "end 2026-04-13" in detail
    ok, detail = verdict(j, "metering_period", "C2")
    assert ok and "business day 8 of 2026-04" in detail


def test_weekend_proposed_date_takes_effect_next_business_day(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [
            # Saturday 11 Apr -> Monday 13 Apr, the 7th business day: inside the metering period
            {
                "change_id": "C1",
                "letter_date": "2026-03-20",
                "proposed_date": "2026-04-11",
                "executed_on": "2026-04-11",
                "notified_on": "2026-04-13",
                "medicion_approved_on": "2026-03-25",
                "tecnologia_approved_on": "2026-03-25",
            },
            # Saturday 18 Apr -> Monday 20 Apr (12th: 1, 6-10, 13-17, 20): fine; Tecnología approving on the Monday is in time
            {
                "change_id": "C2",
                "letter_date": "2026-04-06",
                "proposed_date": "2026-04-18",
                "executed_on": "2026-04-18",
                "notified_on": "2026-04-20",
                "tecnologia_approved_on": "2026-04-20",
            },
        ],
    )
    ok, detail = verdict(j, "metering_period", "C1")
    assert not ok and "Saturday" in detail and "effective 2026-04-13 is business day 7" in detail
    ok, detail = verdict(j, "metering_period", "C2")
    assert ok and "effective 2026-04-20 is business day 12" in detail
    ok, detail = verdict(j, "approvals", "C2")
    assert ok and "effective date 2026-04-20" in detail
    effective = dict(zip(j.changes["change_id"], j.changes["effective_date"].cast(pl.String)))
    assert effective == {"C1": "2026-04-13", "C2": "2026-04-20"}


# --- approvals: both, on or before the effective date ---------------------------------------------------


def test_approvals(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [
            {"change_id": "C1", "tecnologia_approved_on": ""},
            {"change_id": "C2", "medicion_approved_on": "2026-04-22"},  # effective 21 Apr
            {"change_id": "C3", "medicion_approved_on": "2026-04-21", "tecnologia_approved_on": "2026-04-21"},
        ],
    )
    assert verdict(j, "approvals", "C1") == (False, "no Tecnología approval recorded")
    ok, detail = verdict(j, "approvals", "C2")
    assert not ok and detail == "Medición approval on 2026-04-22 is after the effective date 2026-04-21"
    assert verdict(j, "approvals", "C3")[0]


# --- delivery (NCC-14 14.10) ----------------------------------------------------------------------------


def test_deadline_one_minute_before_and_after(tmp_path: Path) -> None:
    points = [(f"P{i}", "ALFA", "consumption", "2025-01-01", "") for i in (1, 2, 3)]
    # notified 22 Apr: the deadline is the end of 24 Apr
    j = run(
        tmp_path,
        [CHANGE],
        [
            ("ALFA", "P1", "2026-04", "2026-04-24 23:59"),
            ("ALFA", "P2", "2026-04", "2026-04-25 00:00"),
            ("ALFA", "P3", "2026-04", "2026-04-25 00:01"),
        ],
        points=points,
    )
    assert statuses(j) == {"P1": "on_time", "P2": "late", "P3": "late"}
    row = j.compliance.row(0, named=True)
    assert (row["required_points"], row["on_time_points"], row["late_points"], row["missing_points"]) == (3, 1, 2, 0)
    assert str(row["deadline"]) == "2026-04-24" and row["compliant"] is False
    ok, detail = verdict(j, "delivery")
    assert not ok and detail == (
        "notified 2026-04-22, deadline end of 2026-04-24: 3 required points, 1 on time, 2 late, 0 missing"
    )


def test_all_on_time_complies(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [CHANGE],
        [("ALFA", "P1", "2026-04", "2026-04-23 10:00"), ("ALFA", "P2", "2026-04", "2026-04-22 08:00")],
    )
    assert statuses(j) == {"P1": "on_time", "P2": "on_time"}
    assert j.compliance["compliant"].to_list() == [True]
    assert verdict(j, "delivery")[0]


def test_points_starting_or_retiring_in_the_month(tmp_path: Path) -> None:
    points = [
        ("P1", "ALFA", "consumption", "2025-01-01", ""),
        ("NEW", "ALFA", "consumption", "2026-04-15", ""),  # starts in April: required
        ("OLD", "ALFA", "consumption", "2024-01-01", "2026-04-05"),  # retires in April: required
        ("GONE", "ALFA", "consumption", "2024-01-01", "2026-03-31"),  # retired before April
        ("LATER", "ALFA", "consumption", "2026-05-01", ""),
    ]  # starts after April
    j = run(
        tmp_path,
        [CHANGE],
        [
            ("ALFA", "P1", "2026-04", "2026-04-23 10:00"),
            ("ALFA", "NEW", "2026-04", "2026-04-23 10:00"),
            ("ALFA", "GONE", "2026-04", "2026-04-23 10:00"),
        ],
        points=points,
    )
    assert statuses(j) == {"P1": "on_time", "NEW": "on_time", "OLD": "missing", "GONE": "not_required"}
    row = j.compliance.row(0, named=True)
    assert (row["required_points"], row["on_time_points"], row["missing_points"]) == (3, 2, 1)


def test_repeated_deliveries_count_by_the_first(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [CHANGE],
        [
            ("ALFA", "P1", "2026-04", "2026-04-26 09:00"),  # re-sent late: still on time
            ("ALFA", "P1", "2026-04", "2026-04-23 10:00"),
            ("ALFA", "P2", "2026-04", "2026-04-25 10:00"),  # first one late
            ("ALFA", "P2", "2026-04", "2026-04-28 10:00"),
        ],
    )
    assert statuses(j) == {"P1": "on_time", "P2": "late"}
    points = j.points.sort("point_id")
    assert points["deliveries"].to_list() == [2, 2]
    assert points["received_at"].to_list() == [datetime(2026, 4, 23, 10), datetime(2026, 4, 25, 10)]


def test_unknown_and_foreign_points_are_reported_not_counted(tmp_path: Path) -> None:
    points = ALFA_POINTS + [("B1", "BETA", "consumption", "2025-01-01", "")]
    j = run(
        tmp_path,
        [CHANGE],
        [
            ("ALFA", "P1", "2026-04", "2026-04-23 10:00"),
            ("ALFA", "P2", "2026-03", "2026-04-23 10:00"),  # another supply month
            ("ALFA", "B1", "2026-04", "2026-04-23 10:00"),
            ("ALFA", "NOPE", "2026-04", "2026-04-23 10:00"),
        ],
        points=points,
    )
    assert statuses(j) == {"P1": "on_time", "P2": "missing", "B1": "not_required", "NOPE": "unknown_point"}
    row = j.compliance.row(0, named=True)
    assert (row["required_points"], row["on_time_points"], row["missing_points"], row["compliant"]) == (2, 1, 1, False)


# --- which month reviews a change; what cannot be judged ------------------------------------------------


def test_month_of_a_change(tmp_path: Path) -> None:
    changes = [
        {"change_id": "MARCH", "proposed_date": "2026-04-21", "executed_on": "2026-03-31", "notified_on": "2026-04-01"},
        {"change_id": "NEVER", "executed_on": "", "notified_on": ""},
        {"change_id": "BAD", "executed_on": "2026-04-31"},
    ]
    j = run(tmp_path, changes)
    assert sorted(j.review["change_id"].unique()) == ["NEVER"]
    assert j.unplaced.select("change_id", "line", "reason").rows() == [
        ("BAD", 4, "executed_on '2026-04-31' is not a date (YYYY-MM-DD)")
    ]
    ok, detail = verdict(j, "delivery", "NEVER")
    assert not ok and detail.startswith("no execution date recorded")
    assert j.compliance.height == 0 and j.points.height == 0
    march = run(tmp_path, changes, month="2026-03")
    assert sorted(march.review["change_id"].unique()) == ["MARCH"]


def test_changes_that_cannot_be_judged_fail_with_the_reason(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [
            {"change_id": "NOLETTER", "letter_date": ""},
            {"change_id": "BADLETTER", "letter_date": "2026-02-30"},
            {"change_id": "STRANGER", "participant": "ZETA"},
            {"change_id": "UNNOTIFIED", "notified_on": ""},
            {"change_id": "EARLY", "notified_on": "2026-04-20"},  # before executed_on 21 Apr
            {"change_id": "NOPROPOSAL", "proposed_date": "abc"},
        ],
        [("ALFA", "P1", "2026-04", "2026-04-23 10:00"), ("ALFA", "P2", "2026-04", "2026-04-23 10:00")],
    )
    assert verdict(j, "notice", "NOLETTER") == (False, "no letter date recorded: notice cannot be checked")
    assert verdict(j, "notice", "BADLETTER") == (
        False,
        "letter_date '2026-02-30' is not a date (YYYY-MM-DD): notice cannot be checked",
    )
    ok, detail = verdict(j, "delivery", "STRANGER")
    assert not ok and "participant ZETA is not in metering_points" in detail
    ok, detail = verdict(j, "delivery", "UNNOTIFIED")
    assert not ok and detail.startswith("no notification date recorded")
    assert set(statuses(j, "UNNOTIFIED").values()) == {"not_judged"}
    ok, detail = verdict(j, "delivery", "EARLY")
    assert not ok and "notified on 2026-04-20 before the change was executed on 2026-04-21" in detail
    for rule in ("notice", "metering_period", "approvals"):
        ok, detail = verdict(j, rule, "NOPROPOSAL")
        assert not ok and "proposed_date 'abc' is not a date" in detail
    # every other verdict of these rows is still given, and nothing unjudgeable passes
    assert j.review.height == 6 * 5
    by_change = j.compliance.select("change_id", "compliant", "on_time_points")
    assert (
        by_change.filter(pl.col("change_id").is_in(["STRANGER", "UNNOTIFIED", "EARLY"]))["compliant"].to_list()
        == [False] * 3
    )
    assert by_change.filter(pl.col("change_id") == "UNNOTIFIED")["on_time_points"].to_list() == [None]
    lines = dict(zip(j.review["change_id"], j.review["line"]))
    assert lines["NOLETTER"] == 2 and lines["NOPROPOSAL"] == 7


def test_participant_without_active_points_is_not_a_pass(tmp_path: Path) -> None:
    j = run(tmp_path, [CHANGE], points=[("P1", "ALFA", "consumption", "2024-01-01", "2026-02-28")])
    ok, detail = verdict(j, "delivery")
    assert not ok and "no metering point active in 2026-04" in detail


def test_a_date_far_outside_the_calendar_is_a_finding(tmp_path: Path) -> None:
    j = run(tmp_path, [{"letter_date": "2062-04-06"}, {"change_id": "C2", "proposed_date": "1926-04-21"}])
    ok, detail = verdict(j, "notice")
    assert not ok and detail.startswith("letter_date 2062-04-06 is outside the business-day calendar")
    for rule in ("metering_period", "approvals"):
        ok, detail = verdict(j, rule, "C2")
        assert not ok and "proposed_date 1926-04-21 is outside the business-day calendar" in detail


# --- interrogation (rule 6(a)): 100% of the supply month's intervals, all four channels, real readings ----


def test_interrogation_all_points_complete(tmp_path: Path) -> None:
    ok, detail = verdict(run(tmp_path, [CHANGE], completeness=completeness({})), "interrogation")
    assert ok and detail == (
        "all 2 metering point(s) active in 2026-04 have 100% of their intervals on all four channels from real readings"
    )


def test_interrogation_a_point_at_99_9_percent_fails(tmp_path: Path) -> None:
    # 30 April days x 96 = 2880 intervals; 2877 real = 99.895..%, shown floored as 99.89 (never rounded up)
    j = run(tmp_path, [CHANGE], completeness=completeness({("P2", "kwh_del"): 2877, ("P2", "kvarh_rec"): 2879}))
    ok, detail = verdict(j, "interrogation")
    assert not ok
    assert detail == (
        "1 of 2 metering point(s) below 100% in 2026-04 (real readings; channels short in brackets): "
        "P2 99.89% (kwh_del, kvarh_rec)"
    )
    # one interval short of 2880 is 99.965..%: floored to 99.96, not shown as 100
    ok, detail = verdict(run(tmp_path, [CHANGE], completeness=completeness({("P1", "kwh_rec"): 2879})), "interrogation")
    assert not ok and detail.endswith("P1 99.96% (kwh_rec)")


def test_interrogation_point_or_channel_missing_from_the_table_is_zero(tmp_path: Path) -> None:
    rows = completeness({}, points=("P1",)).filter(pl.col("channel") != "kvarh_rec")
    rows = pl.concat([rows, completeness({}, points=("P2",))])
    ok, detail = verdict(run(tmp_path, [CHANGE], completeness=rows), "interrogation")
    assert not ok and detail.endswith(": P1 0.00% (kvarh_rec)")
    ok, detail = verdict(run(tmp_path, [CHANGE], completeness=completeness({}, points=("P1",))), "interrogation")
    assert not ok and detail.endswith(": P2 0.00% (not in meter_completeness)")


def test_interrogation_month_never_ingested(tmp_path: Path) -> None:
    march_only = completeness({}, month="2026-03")
    ok, detail = verdict(run(tmp_path, [CHANGE], completeness=march_only), "interrogation")
    assert not ok and detail == (
        "the readings of 2026-04 were never ingested (no meter_completeness rows): 100% interrogation cannot be shown"
    )
    ok, detail = verdict(run(tmp_path, [CHANGE], note="no warehouse at /x"), "interrogation")
    assert not ok and detail == (
        "the readings of 2026-04 were never ingested (no meter_completeness rows; no "
        "warehouse at /x): 100% interrogation cannot be shown"
    )


def test_interrogation_cannot_be_judged_without_a_supply_month_or_points(tmp_path: Path) -> None:
    j = run(
        tmp_path,
        [{"change_id": "NEVER", "executed_on": ""}, {"change_id": "STRANGER", "participant": "ZETA"}],
        completeness=completeness({}),
    )
    ok, detail = verdict(j, "interrogation", "NEVER")
    assert not ok and detail == (
        "no execution date recorded: the change was not carried out, so there is no supply "
        "month: interrogation cannot be judged"
    )
    ok, detail = verdict(j, "interrogation", "STRANGER")
    assert not ok and "participant ZETA is not in metering_points" in detail
    j = run(
        tmp_path,
        [CHANGE],
        points=[("P1", "ALFA", "consumption", "2024-01-01", "2026-02-28")],
        completeness=completeness({}),
    )
    ok, detail = verdict(j, "interrogation")
    assert not ok and detail == "participant ALFA has no metering point active in 2026-04: nothing to judge"
    # the rules come in the guide's order
    assert j.review["rule"].to_list() == ["notice", "metering_period", "approvals", "interrogation", "delivery"]


# --- the evidence without words: key + values, worded by the reports' catalogues -------------------------


def worded(j: Judgement, rule: str, change_id: str, lang: str) -> str:
    from pipelines.reports import evidence
    from pipelines.reports.i18n import words

    row = j.review.filter((pl.col("change_id") == change_id) & (pl.col("rule") == rule)).row(0, named=True)
    return evidence.words(words(lang), row["detail_key"], row["detail_args"], None)


def test_every_rule_publishes_its_evidence_as_a_key_and_values(tmp_path: Path) -> None:
    """The same facts as `detail`, worded by the catalogue: Spanish and English, dates DD/MM/AAAA, numbers
    with comma thousands, the closed day named (a Saturday), the points below 100 % with their floored
    percentage (2879 of 2880 intervals = 99.96 %)."""
    j = run(
        tmp_path,
        [
            # Saturday 11 Apr -> Monday 13 Apr, the 7th business day (1, 6-10, 13): inside the metering period
            {"change_id": "C1", "letter_date": "2026-03-20", "proposed_date": "2026-04-11"},
            {"change_id": "C2", "medicion_approved_on": "2026-04-22", "tecnologia_approved_on": "abc"},
            {"change_id": "C3", "executed_on": "", "notified_on": ""},
        ],
        completeness=completeness({("P1", "kwh_del"): 2879}),
    )
    assert worded(j, "metering_period", "C1", "es") == (
        "La fecha propuesta 11/04/2026 no es día hábil (sábado), por lo que el cambio rige desde el siguiente día "
        "hábil; la fecha efectiva 13/04/2026 es el día hábil 7 de 2026-04, dentro del periodo de medición (los "
        "primeros 7 días hábiles terminan el 13/04/2026)"
    )
    assert worded(j, "metering_period", "C1", "en").startswith(
        "Proposed 11/04/2026 is not a business day (Saturday), so the change takes effect on the next business day; "
        "effective 13/04/2026 is business day 7 of 2026-04, inside"
    )
    assert worded(j, "approvals", "C2", "es") == (
        "La aprobación de Medición del 22/04/2026 es posterior a la fecha efectiva 21/04/2026; "
        "la aprobación de Tecnología «abc» no es una fecha (AAAA-MM-DD)"
    )
    assert worded(j, "interrogation", "C1", "es") == (
        "1 de 2 punto(s) de medición por debajo de 100 % en 2026-04 (lecturas reales; canales incompletos entre "
        "paréntesis): P1 99.96 % (kwh_del)"
    )
    assert worded(j, "delivery", "C3", "en") == (
        "No execution date recorded: the change was not carried out, so there is no supply month to deliver; "
        "delivery cannot be judged"
    )
    # a key for every row, and the English detail kept for analysts
    assert j.review["detail_key"].null_count() == 0 and j.review["detail"].null_count() == 0
