"""Strict typed reading of input files (CSV or Parquet with the same stem)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from pipelines.errors import InputError
from pipelines.inputs import read_rows, read_table

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


def test_read_rows_keeps_every_row_with_its_line_and_reason_in_csv_and_parquet(tmp_path):
    """The quarantining reader: bad rows are kept with the line a person finds them on (CSV: the header
    is line 1; Parquet: rows from 1), their text as written and why they cannot be used."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "nodal_prices.csv").write_text(
        "node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\nN1,2026-05-01 00:30,x\n,2026-05-01 02:00, 7 \n"
    )
    from_csv = read_rows(tmp_path / "a", "nodal_prices", SCHEMA, not_blank=("node",))
    (tmp_path / "b").mkdir()
    pl.read_csv(tmp_path / "a" / "nodal_prices.csv", infer_schema=False).write_parquet(
        tmp_path / "b" / "nodal_prices.parquet"
    )
    from_parquet = read_rows(tmp_path / "b", "nodal_prices", SCHEMA, not_blank=("node",))
    reasons = ["unparsable hour (hour); unparsable price_usd_mwh (float)", "missing node"]
    assert from_csv.label == "nodal_prices.csv" and from_parquet.label == "nodal_prices.parquet"
    assert from_csv.bad().select("_line", "_reason").rows() == list(zip([3, 4], reasons))
    assert from_parquet.bad().select("_line", "_reason").rows() == list(zip([2, 3], reasons))
    for source in (from_csv, from_parquet):
        assert source.rows.height == 3 and source.good()["price_usd_mwh"].to_list() == [50.0]
        assert source.bad()["_raw_hour"].to_list() == ["2026-05-01 00:30", "2026-05-01 02:00"]
        assert source.bad()["_raw_price_usd_mwh"].to_list() == ["x", "7"]  # as written, trimmed
        assert source.rows["_line"].dtype == pl.Int64


@pytest.mark.parametrize("read", [read_table, read_rows])
def test_both_readers_refuse_a_file_they_cannot_read_with_the_same_message(tmp_path, read):
    with pytest.raises(InputError, match=r"^missing input file nodal_prices.csv \(or nodal_prices.parquet\) in "):
        read(tmp_path, "nodal_prices", SCHEMA)
    with pytest.raises(InputError, match=r"^input directory .*nowhere does not exist$"):
        read(tmp_path / "nowhere", "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text("node,hour\nN1,2026-05-01 00:00\n")
    with pytest.raises(InputError, match=r"^nodal_prices.csv: missing column\(s\) price_usd_mwh; found node, hour$"):
        read(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text("node,hour,price_usd_mwh\nN1,2026-05-01 00:00,50\nN3,2026-05-01 00:00\n")
    with pytest.raises(
        InputError, match=r"^nodal_prices.csv: line 3 has 2 fields; every line must have the header's 3 fields$"
    ):
        read(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").write_text("node;hour;price_usd_mwh\nN1;2026-05-01 00:00;61,97\n")
    with pytest.raises(InputError, match="nodal_prices.csv looks semicolon-separated"):
        read(tmp_path, "nodal_prices", SCHEMA)
    (tmp_path / "nodal_prices.csv").unlink()
    (tmp_path / "nodal_prices.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match=r"^nodal_prices.parquet: cannot be read \("):
        read(tmp_path, "nodal_prices", SCHEMA)


def test_a_stray_quote_names_its_line(tmp_path):
    """A `"` that opens a field and never closes swallows the rest of the file: the reader's own error
    names no line; the message does."""
    (tmp_path / "t.csv").write_text('a,b,c\n1,x,2\n2,"y,3\n3,z,4\n4,w,5\n')
    with pytest.raises(InputError, match=r"t\.csv: line 3 has an unmatched double quote"):
        read_table(tmp_path, "t", {"a": "int", "b": "str", "c": "int"})
