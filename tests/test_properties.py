"""Property-based tests (Hypothesis): whatever a participant writes into a field, the readers answer
with a typed row, a quarantined row with its reason, or a clear MayoristaError, never a crash and
never a row that silently disappears. Example counts are modest so the suite stays fast."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.errors import MayoristaError
from pipelines.metering import readings
from pipelines.periods import Quarter
from tests.metering.fixtures import stage, write_registry

# PROPERTY_EXAMPLES=2000 for a longer hunt
SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# A field is anything that stays on its line: any text or raw bytes without a line break. Mixed with
# near-misses of valid values, so both sides of every parse are visited.
_NO_BREAK = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
_TEXT = st.text(_NO_BREAK, max_size=30).map(lambda s: s.encode("utf-8"))
_BYTES = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))
_NEAR = st.sampled_from(
    [
        b"",
        b" ",
        b'"',
        b'""',
        b",",
        b"NaN",
        b"inf",
        b"-Infinity",
        b"1e400",
        b"1,5",
        b"-0",
        b"\x00",
        b"\x1f",
        b"\xef\xbb\xbf",
        b"2026-04-02 00:15",
        b"2026-04-02 00:15:00",
        b"2026-04-02T00:15",
        b"2026-04-02T00:15:00Z",
        b"2026-04-02 00:15:30",
        b"2026-04-02 00:10",
        b"2026-05-01 00:00",
        b"2026-03-31 23:45",
        b"2026-04-31 00:15",
        b"DEV1",
        b"DEV3",
        b"DEV9",
        b"kwh_del",
        b"KWH_DEL",
        b" kwh_rec ",
        b"1.5",
        b" 2.25 ",
        b"-3",
    ]
)
FIELD = st.one_of(_NEAR, _TEXT, _BYTES)

GOOD = [
    b"DEV1,2026-04-02 00:15,kwh_del,1.5",
    b"DEV1,2026-04-02 00:30,kwh_del,1.6",
    b"DEV3,2026-04-03 00:15,kwh_rec,0.5",
]


@SETTINGS
@given(
    fields=st.tuples(FIELD, FIELD, FIELD, FIELD),
    position=st.integers(0, 3),
    path=st.sampled_from(["fast", "tolerant", "parquet"]),
)
def test_any_field_of_a_readings_row_is_read_or_quarantined_with_a_reason(fields, position, path):
    """`path`: the multi-file fast scan (exact header), the per-file tolerant line scan (a header with
    a BOM and another column order), or a text-typed Parquet file."""
    root = Path(tempfile.mkdtemp(prefix="prop-readings-"))
    try:
        write_registry(root)
        fuzzed = b",".join(fields)
        lines = [*GOOD[:1], *GOOD[1:][:position], fuzzed, *GOOD[1:][position:]]
        (root / "readings").mkdir()
        csv = root / "readings" / "PA.csv"
        csv.write_bytes(b"device_id,interval_end,channel,value\n" + b"\n".join(lines) + b"\n")
        if path == "tolerant":
            csv.write_bytes(b"\xef\xbb\xbfdevice_id, interval_end ,channel,value\n" + b"\n".join(lines) + b"\n")
        if path == "parquet":  # the same row in a text-typed Parquet file (when it splits into the four fields)
            parts = fuzzed.split(b",")
            try:
                row = [p.decode("utf-8") for p in parts]
            except UnicodeDecodeError:
                row = []
            if len(row) != 4:
                return
            table = [[v.decode() for v in g.split(b",")] for g in GOOD] + [row]
            pl.DataFrame(table, schema=list(readings.COLUMNS), orient="row").write_parquet(
                root / "readings" / "PA.parquet"
            )
            csv.unlink()
        staged = stage(root, root / "scratch")  # never raises for a bad row

        assert staged.unreadable == {}, staged.unreadable  # one bad row never costs the file
        rows = staged.scan().with_columns(reason=readings.reasons()).collect()
        cats = dict(rows.group_by("cat").len().iter_rows())
        # every line read is in exactly one category: good + quarantined (+ other month, unplaced, blank)
        assert rows.height == len(lines), (rows.height, lines)
        assert sum(cats.values()) == len(lines)
        assert cats.get(readings.CATEGORY["good"], 0) >= len(GOOD)  # the good rows around it are unharmed
        good = rows.filter(pl.col("cat") == readings.CATEGORY["good"])
        assert good["v"].is_finite().all() and good["k"].is_not_null().all()
        kept = rows.filter(pl.col("cat").is_in([readings.CATEGORY["quarantine"], readings.CATEGORY["unplaced"]]))
        assert (kept["reason"].str.len_chars() > 0).all(), kept
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- NCC-11 --------------------------------------------------------------------------------------

NCC11 = {
    "nodal_prices": ["node,hour,price_usd_mwh", "N1,2026-05-01 00:00,61.97", "N1,2026-05-01 01:00,51.99"],
    "spot_demand": ["distributor,node,hour,energy_mwh", "D1,N1,2026-05-01 00:00,2.5", "D1,N1,2026-05-01 01:00,-1.5"],
    "contract_dispatch": [
        "distributor,contract_id,producer,hour,energy_mwh,price_usd_mwh",
        "D1,C1,G1,2026-05-01 00:00,27.0,70.96",
        "D1,C1,G1,2026-05-01 01:00,27.0,75.38",
    ],
    "total_demand": ["distributor,hour,energy_mwh", "D1,2026-05-01 00:00,29.5", "D1,2026-05-01 01:00,25.5"],
    "power_contracts": [
        "distributor,contract_id,producer,month,power_kw,price_usd_kw_month",
        "D1,C1,G1,2026-05,29699.7,8.73",
        "D1,C1,G1,2026-06,29699.7,9.43",
    ],
    "firm_demand": [
        "distributor,month,dfnc_kw,demax_kw",
        "D1,2026-05,107539.7,225681.8",
        "D1,2026-06,104922.8,222983.9",
    ],
    "parameters": ["name,value", "prefpot_usd_kw_month,8.9"],
}


@SETTINGS
@given(data=st.data(), value=FIELD, header=st.booleans())
def test_any_field_of_an_ncc11_input_is_read_or_a_clear_error(data, value, header):
    from pipelines.ncc11.inputs import load

    name = data.draw(st.sampled_from(sorted(NCC11)))
    lines = [line.encode() for line in NCC11[name]]
    line = 0 if header else data.draw(st.integers(1, len(lines) - 1))
    fields = lines[line].split(b",")
    column = data.draw(st.integers(0, len(fields) - 1))
    fields[column] = value
    lines[line] = b",".join(fields)
    root = Path(tempfile.mkdtemp(prefix="prop-ncc11-"))
    try:
        for stem, content in NCC11.items():
            (root / f"{stem}.csv").write_text("\n".join(content) + "\n")
        (root / f"{name}.csv").write_bytes(b"\n".join(lines) + b"\n")
        try:
            inputs = load(root, Quarter.parse("2026-05"))
        except MayoristaError as exc:
            assert str(exc).strip(), "an error must say what is wrong"
            return
        for frame in inputs.frames.values():  # what was read is typed and finite
            for column_name, dtype in frame.schema.items():
                if dtype == pl.Float64:
                    assert frame[column_name].drop_nulls().is_finite().all()
    finally:
        shutil.rmtree(root, ignore_errors=True)
