"""Strict typed reading of input files (CSV or Parquet with the same stem)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from pipelines.errors import InputError
from pipelines.inputs import read_table

SCHEMA = {"node": "str", "hour": "hour", "price_usd_mwh": "float"}


def test_csv_and_parquet_with_the_same_stem_read_alike(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "nodal_prices.csv").write_text(
        "node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50.5\nN1,2026-05-01 01:00, 60 \n"
    )
    from_csv = read_table(tmp_path / "a", "nodal_prices", SCHEMA)
    (tmp_path / "b").mkdir()
    from_csv.write_parquet(tmp_path / "b" / "nodal_prices.parquet")
    from_parquet = read_table(tmp_path / "b", "nodal_prices", SCHEMA)
    assert from_csv.equals(from_parquet)
    assert from_csv["price_usd_mwh"].to_list() == [50.5, 60.0]  # surrounding blanks are tolerated
    assert from_csv["hour"].to_list() == [datetime(2026, 5, 1, 0), datetime(2026, 5, 1, 1)]


def test_every_bad_value_is_reported_with_its_line(tmp_path):
    (tmp_path / "nodal_prices.csv").write_text(
        "node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\nN1,2026-05-01 00:30,x\nN2,,\nN3,2026-05-01 02:00,1e400x\n"
    )
    with pytest.raises(InputError) as raised:
        read_table(tmp_path, "nodal_prices", SCHEMA)
    text = str(raised.value)
    assert "nodal_prices.csv: 2 row(s)" in text
    assert "column hour (expected YYYY-MM-DD HH:00): 1 bad, e.g. line 3: '2026-05-01 00:30'" in text
    assert "column price_usd_mwh (expected a finite number): 2 bad, e.g. line 3: 'x', line 5: '1e400x'" in text


def test_blank_cells_are_missing_values_not_errors(tmp_path):
    (tmp_path / "nodal_prices.csv").write_text("node,hour,price_usd_mwh\nN1,2026-05-01 00:00,\n")
    frame = read_table(tmp_path, "nodal_prices", SCHEMA)
    assert frame["price_usd_mwh"].to_list() == [None]


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(InputError, match=r"missing input file nodal_prices.csv \(or nodal_prices.parquet\)"):
        read_table(tmp_path, "nodal_prices", SCHEMA)
    pl.DataFrame({"node": ["N1"], "hour": ["2026-05-01 00:00"]}).write_csv(tmp_path / "nodal_prices.csv")
    with pytest.raises(InputError, match="nodal_prices.csv: missing column.s. price_usd_mwh"):
        read_table(tmp_path, "nodal_prices", SCHEMA)


@pytest.mark.parametrize("word", ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_numbers_are_bad_values_named_by_line(tmp_path, word):
    (tmp_path / "nodal_prices.csv").write_text(
        f"node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\nN1,2026-05-01 01:00,{word}\n"
    )
    with pytest.raises(InputError) as raised:
        read_table(tmp_path, "nodal_prices", SCHEMA)
    assert f"column price_usd_mwh (expected a finite number): 1 bad, e.g. line 3: '{word}'" in str(raised.value)


def test_non_finite_numbers_in_typed_parquet_are_bad_values_named_by_row(tmp_path):
    pl.DataFrame(
        {
            "node": ["N1", "N1", "N1"],
            "hour": [datetime(2026, 5, 1, h) for h in range(3)],
            "price_usd_mwh": [1.0, float("nan"), float("-inf")],
        }
    ).write_parquet(tmp_path / "nodal_prices.parquet")
    with pytest.raises(InputError) as raised:
        read_table(tmp_path, "nodal_prices", SCHEMA)
    assert "nodal_prices.parquet: 2 row(s)" in str(raised.value)
    assert "2 bad, e.g. line 2: nan, line 3: -inf" in str(raised.value)


def test_empty_file_semicolons_ragged_lines_and_missing_directory(tmp_path):
    (tmp_path / "nodal_prices.csv").write_text("")
    with pytest.raises(InputError, match=r"^nodal_prices.csv is empty \(no header line\)$"):
        read_table(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text("node;hour;price_usd_mwh\nN1;2026-05-01 00:00;61,97\n")
    with pytest.raises(
        InputError, match="nodal_prices.csv looks semicolon-separated.*comma-separated values with decimal points"
    ):
        read_table(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text(
        'node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\n"N,2",2026-05-01 00:00,50,7\nN3,2026-05-01 00:00\n'
    )
    with pytest.raises(
        InputError,
        match=r"^nodal_prices.csv: 2 line\(s\) do not have the header's 3 fields: line 3 has 4, line 4 has 2$",
    ):
        read_table(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text("node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\nN3,2026-05-01 00:00\n")
    with pytest.raises(
        InputError, match=r"^nodal_prices.csv: line 3 has 2 fields; every line must have the header's 3 fields$"
    ):
        read_table(tmp_path, "nodal_prices", SCHEMA)
    with pytest.raises(InputError, match=r"^input directory .*nowhere does not exist$"):
        read_table(tmp_path / "nowhere", "nodal_prices", SCHEMA)
    assert read_table(tmp_path / "nowhere", "nodal_prices", SCHEMA, required=False) is None
