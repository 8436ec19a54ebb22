"""The GX runner: suites prepared in the background warm-up give the same verdicts as cold ones."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines import quality
from pipelines.errors import ValidationFailed


def _parameters(names: list[str | None], values: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"name": names, "value": values}, schema={"name": pl.String, "value": pl.Float64})


def test_warmed_suite_passes_good_rows_and_names_bad_ones():
    ready = quality.warm("ncc11_parameters")
    # asked for while the warm-up may still be preparing it: the lock makes the caller wait
    good = quality.run_suite("ncc11_parameters", "parameters.csv", _parameters(["prefpot_usd_kw_month"], [8.9]))
    ready.join()
    assert [r.success for r in good] == [True] * 4

    bad = quality.run_suite(
        "ncc11_parameters",
        "parameters.csv",
        _parameters(["prefpot_usd_kw_month", "prefpot_usd_kw_month"], [8.9, None]),
        id_columns=["name"],
    )
    failed = {r.check: r for r in bad if not r.success}
    assert set(failed) == {"expect_column_values_to_not_be_null", "expect_column_values_to_be_unique"}
    assert failed["expect_column_values_to_not_be_null"].unexpected_count == 1
    assert failed["expect_column_values_to_be_unique"].unexpected_count == 2
    with pytest.raises(
        ValidationFailed, match=r"parameters.csv: expect_column_values_to_be_unique \[name\]: 2 unexpected"
    ):
        quality.raise_on_errors(bad)


def test_warm_up_of_a_missing_suite_fails_later_in_the_caller():
    quality.warm("no_such_suite").join()  # must not raise in the background thread
    with pytest.raises(FileNotFoundError, match="no_such_suite.json"):
        quality.run_suite("no_such_suite", "x", _parameters(["a"], [1.0]))


def test_gx_starts_without_the_modules_only_unused_expectations_need():
    """scipy.stats and altair are imported by GX for one expectation we do not use, SQLAlchemy for its SQL
    data sources: a run does not pay for them, and each is still there for whoever imports it later."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipelines import quality\n"
        "import polars as pl\n"
        "quality.run_suite('ncc11_parameters', 'p.csv', pl.DataFrame({'name': ['prefpot_usd_kw_month'], 'value': [8.9]}))\n"
        "print(sorted(m for m in ('scipy.stats._stats_py', 'altair.vegalite', 'sqlalchemy') if m in sys.modules))\n"
        "import sqlalchemy\n"
        "print(sqlalchemy.__name__)\n"
        "from scipy import stats\n"
        "print(round(float(stats.entropy([0.5, 0.5], [0.25, 0.75])), 6))\n"
        "import altair\n"
        "print(altair.Chart.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # KL divergence of (1/2, 1/2) from (1/4, 3/4): 1/2 ln 2 + 1/2 ln(2/3) = 0.143841
    assert done.stdout.split() == ["[]", "sqlalchemy", "0.143841", "Chart"]
