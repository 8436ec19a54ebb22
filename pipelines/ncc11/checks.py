"""Data-quality checks of a quarter's programming inputs, all run through Great Expectations.

Row-level rules (columns, nulls, unique keys, ranges, months) are suites over each file. Rules that
span rows or files (every hour present once per key, the same distributors everywhere, total demand =
contract + spot) are computed here as small derived frames, one row per finding, with a `problem`
text that names the key and an example, so a failed suite reads like a report a person can act on."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipelines import periods
from pipelines.ncc11.inputs import PREFPOT, TIME_KEYED, Ncc11Inputs
from pipelines.quality import CheckResult, run_suite

# time-keyed file -> the columns that, with the time key, identify a row
TIME_KEYS = {
    "nodal_prices": ["node"],
    "spot_demand": ["distributor", "node"],
    "contract_dispatch": ["distributor", "contract_id"],
    "total_demand": ["distributor"],
}
DISTRIBUTOR_FILES = ("spot_demand", "contract_dispatch", "total_demand", "power_contracts", "firm_demand")


def expected_slots(inputs: Ncc11Inputs) -> pl.DataFrame:
    """Every hour of the quarter (hourly mode) or every block of the blocks file (block mode)."""
    if inputs.mode == "block":
        return inputs.frames["blocks"].select("block").unique()
    start, end = periods.quarter_bounds(inputs.quarter)
    return pl.DataFrame({"hour": pl.datetime_range(start, end, "1h", closed="left", eager=True, time_unit="us")})


def coverage_problems(frame: pl.DataFrame, name: str, keys: list[str], time_col: str, expected: pl.DataFrame) -> pl.DataFrame:
    """One `problem` per key whose time slots are not exactly the expected ones, each exactly once."""
    unit = time_col
    if frame.schema[time_col] == pl.Datetime("us"):  # as the files write it, and it still sorts
        frame = frame.with_columns(pl.col(time_col).dt.strftime("%Y-%m-%d %H:%M"))
        expected = expected.with_columns(pl.col(time_col).dt.strftime("%Y-%m-%d %H:%M"))
    counts = frame.group_by(*keys, time_col).agg(n=pl.len())
    key_text = pl.concat_str([pl.format(f"{k}={{}}", pl.col(k)) for k in keys], separator=" ")
    dups = counts.filter(pl.col("n") > 1).group_by(keys).agg(k=pl.len(), first=pl.col(time_col).min())
    extra = counts.join(expected, on=time_col, how="anti").group_by(keys).agg(k=pl.len(), first=pl.col(time_col).min())
    per_key = counts.join(expected, on=time_col, how="semi").group_by(keys).agg(k=pl.len())
    short_keys = per_key.filter(pl.col("k") < expected.height).select(keys)
    missing = (
        short_keys.join(expected, how="cross")
        .join(counts.select(*keys, time_col), on=[*keys, time_col], how="anti")
        .group_by(keys).agg(k=pl.len(), first=pl.col(time_col).min())
    )
    parts = [
        dups.select(problem=pl.format(f"{name}: {{}}: {{}} {unit}(s) appear more than once, first {{}}", key_text, "k", "first")),
        extra.select(problem=pl.format(f"{name}: {{}}: {{}} {unit}(s) outside the quarter, first {{}}", key_text, "k", "first")),
        missing.select(problem=pl.format(f"{name}: {{}}: {{}} {unit}(s) of the quarter missing, first {{}}", key_text, "k", "first")),
    ]
    return pl.concat(parts)


def _month_coverage(frame: pl.DataFrame, months: list[str]) -> pl.DataFrame:
    expected = pl.DataFrame({"month": months})
    return coverage_problems(frame, "firm_demand", ["distributor"], "month", expected)


def consistency_problems(inputs: Ncc11Inputs) -> pl.DataFrame:
    """Findings that span rows or files; an empty frame means consistent."""
    f = inputs.frames
    expected = expected_slots(inputs)
    found = [coverage_problems(f[name], name, keys, inputs.time_col, expected) for name, keys in TIME_KEYS.items()]
    found.append(_month_coverage(f["firm_demand"], periods.quarter_months(inputs.quarter)))
    presence = pl.concat(
        [f[name].select("distributor").unique().with_columns(file=pl.lit(name)) for name in DISTRIBUTOR_FILES]
    )
    everywhere = presence.group_by("distributor").agg(files=pl.col("file"))
    found.append(
        everywhere.with_columns(
            absent=pl.lit(list(DISTRIBUTOR_FILES)).list.set_difference(pl.col("files"))
        ).filter(pl.col("absent").list.len() > 0).select(
            problem=pl.format("distributor {} is missing from {}", "distributor", pl.col("absent").list.join(", "))
        )
    )
    unpriced = f["spot_demand"].select("node").unique().join(f["nodal_prices"].select("node").unique(), on="node", how="anti")
    found.append(unpriced.select(problem=pl.format("spot_demand: node {} has no nodal_prices", "node")))
    uncovered = f["power_contracts"].select("distributor", "month").unique().join(
        f["firm_demand"].select("distributor", "month"), on=["distributor", "month"], how="anti")
    found.append(uncovered.select(problem=pl.format("power_contracts: {} {} has no firm_demand row", "distributor", "month")))
    return pl.concat(found)


def balance_frame(inputs: Ncc11Inputs) -> pl.DataFrame:
    """Per distributor and slot: relative gap between total demand and contract + spot energy."""
    f, t = inputs.frames, inputs.time_col
    spot = f["spot_demand"].group_by("distributor", t).agg(spot=pl.col("energy_mwh").sum())
    contract = f["contract_dispatch"].group_by("distributor", t).agg(contract=pl.col("energy_mwh").sum())
    total = f["total_demand"].group_by("distributor", t).agg(total=pl.col("energy_mwh").sum())
    joined = total.join(spot, on=["distributor", t], how="full", coalesce=True).join(
        contract, on=["distributor", t], how="full", coalesce=True).fill_null(0.0)
    gap = (pl.col("total") - pl.col("spot") - pl.col("contract")).abs()
    return joined.select(
        where=pl.format("{} {}", "distributor", pl.col(t).cast(pl.String)),
        rel_diff=pl.when(gap < 1e-9).then(0.0).otherwise(gap / pl.max_horizontal(pl.col("total").abs(), pl.lit(1e-9))),
    )


def run_checks(inputs: Ncc11Inputs) -> list[CheckResult]:
    start, end = periods.quarter_bounds(inputs.quarter)
    params = {
        "first_hour": start, "last_hour": end - timedelta(hours=1),
        "months": periods.quarter_months(inputs.quarter),
    }
    variant = "hourly" if inputs.mode == "hour" else "blocks"
    rename = {"hour": "block"} if inputs.mode == "block" else None
    results: list[CheckResult] = []
    for name, frame in inputs.frames.items():
        suite_rename = rename if name in TIME_KEYED else None
        results += run_suite(f"ncc11_{name}", inputs.files[name].name, frame, params, variant=variant, rename=suite_rename)
    results += run_suite("ncc11_consistency", "across input files", consistency_problems(inputs))
    results += run_suite("ncc11_balance", "total_demand vs contract_dispatch + spot_demand", balance_frame(inputs))
    prefpot = inputs.frames["parameters"].filter(pl.col("name") == PREFPOT)
    results += run_suite("ncc11_prefpot", f"{inputs.files['parameters'].name} ({PREFPOT})", prefpot)
    return results
