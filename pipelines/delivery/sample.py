"""Sample VPN changes, Direct@mm deliveries and dispatch records for the demo (deterministic).

Runs after the metering sample: participants and points come from `<out>/metering_points.csv`.
The month under review is April 2026, whose first 7 business days end later than usual because
2-3 April (Maundy Thursday, Good Friday) are holidays. The changes mix every verdict:

- CHG-2603-01 (March): compliant; gives the March run something to review.
- CHG-2604-01: compliant; one point delivered twice (the first delivery counts).
- CHG-2604-02: late notice (3 business days); one consumption point late, one missing, one
  delivered one minute before the deadline ends.
- CHG-2604-03: letter 30 March, proposed 7 April: 5 business days would be enough without Holy
  Week, so notice fails, and 7 April is inside the metering period; a delivery of an unknown point
  and of another participant's point (reported, not counted), and a delivery row with a bad date.
- CHG-2604-04: proposed for a Saturday (works Monday 27 April), Tecnología never approved; a
  generation point missing (estimated from dispatch records -5%).
- CHG-2604-05 (the first participant again): approved but never executed (delivery cannot be judged)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from pipelines.delivery.compliance import required_points
from pipelines.errors import InputError
from pipelines.metering.registry import active_in, load_registry
from pipelines.periods import Month

MONTH = "2026-04"


def _changes(p: list[str], vpn_of: dict[str, str]) -> list[dict]:
    def row(cid, participant, letter, proposed, medicion, tecnologia, executed, notified):
        return {
            "change_id": cid,
            "participant": participant,
            "vpn_id": vpn_of[participant],
            "letter_date": letter,
            "proposed_date": proposed,
            "medicion_approved_on": medicion,
            "tecnologia_approved_on": tecnologia,
            "executed_on": executed,
            "notified_on": notified,
        }

    return [
        row("CHG-2603-01", p[0], "2026-03-02", "2026-03-17", "2026-03-05", "2026-03-06", "2026-03-17", "2026-03-18"),
        row("CHG-2604-01", p[0], "2026-04-06", "2026-04-21", "2026-04-08", "2026-04-09", "2026-04-21", "2026-04-22"),
        row("CHG-2604-02", p[1], "2026-04-14", "2026-04-17", "2026-04-15", "2026-04-16", "2026-04-17", "2026-04-20"),
        row("CHG-2604-03", p[2], "2026-03-30", "2026-04-07", "2026-03-31", "2026-04-01", "2026-04-07", "2026-04-09"),
        row("CHG-2604-04", p[3], "2026-04-13", "2026-04-25", "2026-04-16", "", "2026-04-25", "2026-04-27"),
        row("CHG-2604-05", p[4], "2026-04-20", "2026-04-30", "2026-04-22", "2026-04-22", "", ""),
    ]


def _deliveries(points: pl.DataFrame, p: list[str], march_points: pl.DataFrame) -> list[dict]:
    def of(participant: str, frame: pl.DataFrame = points) -> list[tuple[str, str]]:
        return [
            (r["point_id"], r["kind"]) for r in frame.filter(pl.col("participant") == participant).iter_rows(named=True)
        ]

    def row(participant, point, received, month=MONTH):
        return {"participant": participant, "point_id": point, "supply_month": month, "received_at": received}

    rows = [row(p[0], pt, "2026-03-19 09:00", "2026-03") for pt, _ in of(p[0], march_points)]
    first = of(p[0])
    rows += [row(p[0], pt, "2026-04-23 10:00") for pt, _ in first]
    rows.append(row(p[0], first[0][0], "2026-04-27 16:30"))  # re-delivery after the deadline: first one counts

    second = of(p[1])  # deadline: end of 2026-04-22
    consumption = [pt for pt, kind in second if kind == "consumption"]
    late, edge, missing = consumption[0], consumption[1], consumption[-1]
    for pt, _ in second:
        if pt != missing:
            received = {late: "2026-04-23 08:15", edge: "2026-04-22 23:59"}.get(pt, "2026-04-21 11:00")
            rows.append(row(p[1], pt, received))

    rows += [row(p[2], pt, "2026-04-10 09:30") for pt, _ in of(p[2])]  # deadline end of 2026-04-11
    rows.append(row(p[2], "PM-UNKNOWN-01", "2026-04-10 09:30"))
    rows.append(row(p[2], first[0][0], "2026-04-10 09:30"))  # another participant's point
    rows.append(row(p[2], of(p[2])[0][0], "2026-04-31 10:00"))  # no 31 April: quarantined, reported

    fourth = of(p[3])  # deadline: end of 2026-04-29
    generation = [pt for pt, kind in fourth if kind == "generation"]
    rows += [row(p[3], pt, "2026-04-28 17:45") for pt, _ in fourth if pt != generation[0]]
    return rows


def _dispatch(points: pl.DataFrame, participant: str) -> pl.DataFrame:
    gen = points.filter((pl.col("participant") == participant) & (pl.col("kind") == "generation"))["point_id"].to_list()
    start = datetime(2026, 4, 1)
    hours = [start + timedelta(hours=h) for h in range(30 * 24)]
    return pl.DataFrame({"point_id": [pt for pt in gen for _ in hours], "hour": hours * len(gen)}).with_columns(
        # a plausible daily shape: more by day than by night, different per point
        kwh=(
            pl.lit(800.0)
            + 40.0 * pl.col("point_id").rank("dense").cast(pl.Float64)
            + pl.when(pl.col("hour").dt.hour().is_between(6, 18)).then(350.0).otherwise(0.0)
            + (pl.col("hour").dt.day() % 7).cast(pl.Float64) * 5.0
        ),
        hour=pl.col("hour").dt.strftime("%Y-%m-%d %H:%M"),
    )


def generate(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if not (out_dir / "metering_points.csv").exists():
        raise InputError(f"{out_dir}/metering_points.csv not found: generate the metering sample first")
    registry = load_registry(out_dir)
    april = required_points(registry, Month.parse(MONTH))
    march = required_points(registry, Month.parse("2026-03"))
    # only participants that reach the administrator through a VPN can change one
    vpns = (
        active_in(registry, date(2026, 4, 1), date(2026, 4, 30))
        .filter(pl.col("vpn_id").is_not_null())
        .group_by("participant")
        .agg(pl.col("vpn_id").min())
    )
    kinds = (
        april.join(vpns, on="participant")
        .group_by("participant")
        .agg(gen=(pl.col("kind") == "generation").any(), cons=(pl.col("kind") == "consumption").sum())
    )
    with_generation = kinds.filter("gen").sort("participant")["participant"].to_list()
    consumers = kinds.filter(~pl.col("gen") & (pl.col("cons") >= 3)).sort("participant")["participant"].to_list()
    picked = with_generation[:1] + consumers[:1]
    others = [x for x in kinds.sort("participant")["participant"].to_list() if x not in picked]
    if len(picked) < 2 or len(others) < 2:
        raise InputError(
            "the sample registry needs 4 participants with a VPN active in 2026-04: one with a "
            "generation point, one with at least three consumption points and none, and two more"
        )
    # CHG-2604-05 (never executed) reuses the first participant
    p = [others[0], consumers[0], others[1], with_generation[0], others[0]]
    vpn_of = dict(zip(vpns["participant"], vpns["vpn_id"]))

    pl.DataFrame(_changes(p, vpn_of)).write_csv(out_dir / "vpn_changes.csv")
    pl.DataFrame(_deliveries(april, p, march)).write_csv(out_dir / "directamm_deliveries.csv")
    _dispatch(april, p[3]).write_csv(out_dir / "dispatch_records.csv")
    return out_dir
