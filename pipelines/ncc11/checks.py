"""Data-quality checks of a quarter's programming inputs, all run through Great Expectations.

The four hourly files hold over a million rows at full scale, and GX on pandas costs about a second
per million rows per expectation. So their suites validate a PROFILE instead: one row per key (node,
distributor-node, contract, distributor) computed in a single polars pass, with the rows, duplicated
/ missing / out-of-quarter slots, null counts and the min/max of each value. Every row-level rule
has an exact aggregate form (no nulls <=> null count 0, unique keys <=> no duplicated slot, ranges
<=> min/max), and a failure names the key and its first offending hour. The small files (power,
firm demand, parameters, blocks) are validated row by row. Rules across files (the same
distributors everywhere, total = contract + spot) are derived frames with their own suites."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import polars as pl

from pipelines.ncc11.inputs import PREFPOT, Ncc11Inputs
from pipelines.quality import CheckResult, run_suite

# time-keyed file -> (key columns besides the time slot, value columns)
TIME_KEYED = {
    "nodal_prices": (["node"], ["price_usd_mwh"]),
    "spot_demand": (["distributor", "node"], ["energy_mwh"]),
    "contract_dispatch": (["distributor", "contract_id"], ["producer", "energy_mwh", "price_usd_mwh"]),
    "total_demand": (["distributor"], ["energy_mwh"]),
}
ROW_KEYS = {
    "power_contracts": ["distributor", "contract_id", "month"],
    "firm_demand": ["distributor", "month"],
    "parameters": ["name"],
    "blocks": ["block"],
    "other_costs": ["distributor", "month", "component"],  # optional file
}
SUITES = tuple(f"ncc11_{name}" for name in [*TIME_KEYED, *ROW_KEYS, "consistency", "balance", "prefpot"])
DISTRIBUTOR_FILES = ("spot_demand", "contract_dispatch", "total_demand", "power_contracts", "firm_demand")
_FMT = "%Y-%m-%d %H:%M"


def expected_slots(inputs: Ncc11Inputs) -> pl.Series:
    """Every hour of the quarter (hourly mode) or every block of the blocks file (block mode)."""
    if inputs.mode == "block":
        return inputs.frames["blocks"]["block"].unique()
    start, end = inputs.quarter.bounds
    return pl.datetime_range(start, end, "1h", closed="left", eager=True, time_unit="us").alias("hour")


def _key_text(keys: list[str]) -> pl.Expr:
    return pl.concat_str([pl.format(f"{k}={{}}", pl.col(k).fill_null("<null>")) for k in keys], separator=" ")


def _as_text(slot: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return slot.dt.strftime(_FMT) if dtype == pl.Datetime("us") else slot.cast(pl.String)


def first_problem(frame: pl.DataFrame, keys: list[str], time_col: str, expected: pl.Series) -> pl.DataFrame:
    """For keys whose slots are not exactly the expected ones: the first duplicated, outside or
    missing slot, as text. Only run on the keys that the profile flagged, so it stays cheap."""
    dtype = frame.schema[time_col]
    counts = frame.group_by(*keys, time_col).agg(n=pl.len())
    wanted = pl.DataFrame({time_col: expected})
    dups = (
        counts.filter(pl.col("n") > 1)
        .group_by(keys)
        .agg(first=pl.col(time_col).min())
        .with_columns(what=pl.lit("duplicated"))
    )
    extra = (
        counts.join(wanted, on=time_col, how="anti")
        .group_by(keys)
        .agg(first=pl.col(time_col).min())
        .with_columns(what=pl.lit("outside the quarter"))
    )
    missing = (
        counts.select(keys)
        .unique()
        .join(wanted, how="cross")
        .join(counts.select(*keys, time_col), on=[*keys, time_col], how="anti")
        .group_by(keys)
        .agg(first=pl.col(time_col).min())
        .with_columns(what=pl.lit("missing"))
    )
    return (
        pl.concat([dups, extra, missing])
        .group_by(keys)
        .agg(
            example=pl.format(
                "first {} {}: {}", pl.col("what"), pl.lit(time_col), _as_text(pl.col("first"), dtype)
            ).str.join("; ")
        )
    )


def profile(
    frame: pl.DataFrame, keys: list[str], values: list[str], time_col: str, expected: pl.Series
) -> pl.DataFrame:
    """One row per key: slot counts against the expected slots, null counts, min/max of numbers."""
    slot = pl.col(time_col)
    aggs = [
        pl.len().alias("rows"),
        slot.null_count().alias(f"null_{time_col}"),
        (pl.len() - slot.n_unique()).alias("duplicate_slots"),
        slot.filter(~slot.is_in(expected.implode())).n_unique().alias("outside_slots"),
        (len(expected) - slot.filter(slot.is_in(expected.implode())).n_unique()).alias("missing_slots"),
    ]
    for column in values:
        aggs.append(pl.col(column).null_count().alias(f"null_{column}"))
        if frame.schema[column].is_numeric():
            aggs += [pl.col(column).min().alias(f"min_{column}"), pl.col(column).max().alias(f"max_{column}")]
    prof = frame.group_by(keys).agg(aggs).with_columns(key=_key_text(keys))
    flagged = prof.filter((pl.col("duplicate_slots") + pl.col("outside_slots") + pl.col("missing_slots")) > 0)
    if flagged.height:
        examples = first_problem(
            frame.join(flagged.select(keys), on=keys, how="semi", nulls_equal=True), keys, time_col, expected
        )
        prof = prof.join(examples, on=keys, how="left", nulls_equal=True)
    else:
        prof = prof.with_columns(example=pl.lit(None, pl.String))
    return prof.sort(keys)


def consistency_problems(inputs: Ncc11Inputs) -> pl.DataFrame:
    """Findings across files, one `problem` text each; an empty frame means consistent."""
    f = inputs.frames
    found = []
    months = pl.DataFrame({"month": inputs.quarter.month_labels})
    missing_months = (
        f["firm_demand"]
        .select("distributor")
        .unique()
        .join(months, how="cross")
        .join(f["firm_demand"], on=["distributor", "month"], how="anti")
    )
    found.append(
        missing_months.select(
            problem=pl.format("firm_demand: distributor {} has no row for {}", "distributor", "month")
        )
    )
    presence = pl.concat(
        [f[name].select("distributor").unique().with_columns(file=pl.lit(name)) for name in DISTRIBUTOR_FILES]
    )
    found.append(
        presence.group_by("distributor")
        .agg(files=pl.col("file"))
        .with_columns(absent=pl.lit(list(DISTRIBUTOR_FILES)).list.set_difference(pl.col("files")))
        .filter(pl.col("absent").list.len() > 0)
        .select(
            problem=pl.format(
                "distributor {} is missing from {}", "distributor", pl.col("absent").list.sort().list.join(", ")
            )
        )
    )
    unpriced = (
        f["spot_demand"].select("node").unique().join(f["nodal_prices"].select("node").unique(), on="node", how="anti")
    )
    found.append(unpriced.select(problem=pl.format("spot_demand: node {} has no nodal_prices", "node")))
    uncovered = (
        f["power_contracts"]
        .select("distributor", "month")
        .unique()
        .join(f["firm_demand"].select("distributor", "month"), on=["distributor", "month"], how="anti")
    )
    found.append(
        uncovered.select(problem=pl.format("power_contracts: {} {} has no firm_demand row", "distributor", "month"))
    )
    return pl.concat(found).sort("problem")


def balance_frame(inputs: Ncc11Inputs) -> pl.DataFrame:
    """Per distributor and slot: relative gap between total demand and contract + spot energy."""
    f, t = inputs.frames, inputs.time_col
    spot = f["spot_demand"].group_by("distributor", t).agg(spot=pl.col("energy_mwh").sum())
    contract = f["contract_dispatch"].group_by("distributor", t).agg(contract=pl.col("energy_mwh").sum())
    total = f["total_demand"].group_by("distributor", t).agg(total=pl.col("energy_mwh").sum())
    joined = (
        total.join(spot, on=["distributor", t], how="full", coalesce=True)
        .join(contract, on=["distributor", t], how="full", coalesce=True)
        .fill_null(0.0)
    )
    gap = (pl.col("total") - pl.col("spot") - pl.col("contract")).abs()
    return joined.select(
        where=pl.format("{} {}", "distributor", _as_text(pl.col(t), joined.schema[t])),
        rel_diff=pl.when(gap < 1e-9).then(0.0).otherwise(gap / pl.max_horizontal(pl.col("total").abs(), pl.lit(1e-9))),
    )


SuiteRun = Callable[[], list[CheckResult]]


def plan_checks(inputs: Ncc11Inputs) -> list[SuiteRun]:
    """Every suite run of a quarter with the frame it validates already computed. Building them is
    polars work only, so it can happen while GX is still being imported."""
    start, end = inputs.quarter.bounds
    params = {
        "first_hour": start,
        "last_hour": end - timedelta(hours=1),
        "months": inputs.quarter.month_labels,
        # other_costs may name only distributors the programming has (else its cost would be lost)
        "distributors": sorted(
            set().union(*(inputs.frames[n]["distributor"].drop_nulls().unique().to_list() for n in DISTRIBUTOR_FILES))
        ),
    }
    expected = expected_slots(inputs)
    t = inputs.time_col
    rename = {"hour": "block", "null_hour": "null_block"} if inputs.mode == "block" else None
    runs: list[SuiteRun] = []
    for name, frame in inputs.frames.items():
        source = inputs.files[name].name
        if name in TIME_KEYED:
            keys, values = TIME_KEYED[name]
            prof = profile(frame, keys, values, t, expected)
            runs.append(
                partial(
                    run_suite,
                    f"ncc11_{name}",
                    f"{source} (per-key profile)",
                    prof,
                    params,
                    rename=rename,
                    id_columns=["key", "example"],
                )
            )
        else:
            runs.append(partial(run_suite, f"ncc11_{name}", source, frame, params, id_columns=ROW_KEYS[name]))
    runs.append(partial(run_suite, "ncc11_consistency", "across input files", consistency_problems(inputs)))
    runs.append(
        partial(
            run_suite,
            "ncc11_balance",
            "total_demand vs contract_dispatch + spot_demand",
            balance_frame(inputs),
            id_columns=["where"],
        )
    )
    prefpot = inputs.frames["parameters"].filter(pl.col("name") == PREFPOT)
    runs.append(partial(run_suite, "ncc11_prefpot", f"{inputs.files['parameters'].name} ({PREFPOT})", prefpot))
    return runs


def run_planned(runs: list[SuiteRun]) -> list[CheckResult]:
    return [result for run in runs for result in run()]
