"""Bad inputs and a failing machine: each gives one clear message, and a failure of the machine is
never taken for a problem of the input (reliability issue: a full disk once published an empty month)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest

from pipelines.errors import EnvironmentFault, InputError
from pipelines.metering import readings
from pipelines.metering import registry as reg
from tests.faults import support
from tests.metering.fixtures import series, stage, write_lines, write_readings, write_registry


@pytest.fixture
def full_disk(tmp_path: Path):
    """A real, tiny (64 KiB) filesystem: writes into it fail with ENOSPC like a full disk does. Unmounted
    by the fault suite's helper, which retries while a closing file keeps it busy (a single try once
    left the mount behind on the machine)."""
    with support.tmpfs(tmp_path / f"full-{uuid.uuid4().hex[:6]}", "64k") as mount:
        yield mount


# --- 1. a failed staging write is the machine's fault, never the input's -------------------------


def _good_month(root: Path) -> None:
    write_registry(root)
    write_readings(root, "2026-04/PA.csv", pl.concat([series("DEV1", 1, 30), series("DEV2", 16, 30)]))
    series("DEV3", 1, 10).write_parquet(root / "readings" / "2026-04" / "PB.parquet")


def test_full_scratch_disk_stops_the_run_instead_of_marking_files_unreadable(tmp_path, full_disk):
    root = tmp_path / "in"
    _good_month(root)
    with pytest.raises(EnvironmentFault) as raised:
        stage(root, full_disk / "scratch")
    message = str(raised.value)
    assert "the disk is full" in message and str(full_disk / "scratch") in message
    assert "Nothing was published" in message
    assert "cannot be read" not in message
    assert not list((full_disk / "scratch").glob(".*.tmp"))  # no half-written scratch file left behind


def test_a_write_failure_in_the_per_file_path_is_also_an_environment_fault(tmp_path, monkeypatch):
    """Without root: the staging write is made to fail the way polars reports ENOSPC."""
    root = tmp_path / "in"
    _good_month(root)
    real = pl.LazyFrame.sink_parquet

    def failing(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", failing)
    with pytest.raises(EnvironmentFault, match="the disk is full"):
        stage(root, tmp_path / "scratch")
    assert not list((tmp_path / "scratch").glob(".*.tmp"))
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", real)
    staged = stage(root, tmp_path / "scratch2")  # and with a working disk the same inputs are fine
    assert staged.unreadable == {}


def test_a_genuinely_unreadable_file_is_still_only_that_file(tmp_path):
    root = tmp_path / "in"
    _good_month(root)
    (root / "readings" / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    staged = stage(root, tmp_path / "scratch")
    (bad,) = [staged.files[i].name for i in staged.unreadable]
    assert bad == "broken.parquet"


# --- NCC-11: the files of another quarter, a missing directory -----------------------------------

SAMPLE_NCC11 = Path(__file__).resolve().parent.parent / "data" / "sample" / "ncc11" / "2026-05"


def test_files_of_another_quarter_give_one_short_message():
    from pipelines.ncc11.inputs import load
    from pipelines.periods import Quarter

    with pytest.raises(InputError) as raised:
        load(SAMPLE_NCC11, Quarter.parse("2026-08"))
    message = str(raised.value)
    assert message.startswith(
        "the input files hold hours of 2026-05, 2026-06, 2026-07, not of the quarter 2026-08 "
        "(2026-08, 2026-09, 2026-10): nodal_prices.csv"
    )
    assert len(message) < 400 and "\n" not in message


def test_missing_ncc11_input_directory(tmp_path):
    from pipelines.ncc11.inputs import load
    from pipelines.periods import Quarter

    with pytest.raises(InputError, match=r"^input directory .*absent does not exist$"):
        load(tmp_path / "absent", Quarter.parse("2026-05"))


@pytest.mark.parametrize("word", ["NaN", "inf", "-inf", "nan", "Infinity"])
def test_non_finite_price_in_the_ncc11_sample_stops_the_read(tmp_path, word):
    from pipelines.ncc11.inputs import load
    from pipelines.periods import Quarter

    shutil.copytree(SAMPLE_NCC11, tmp_path / "in")
    prices = tmp_path / "in" / "nodal_prices.csv"
    lines = prices.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + f",{word}"
    prices.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError,
        match=rf"(?s)nodal_prices.csv: 1 row.*column price_usd_mwh \(expected a finite number\): "
        rf"1 bad, e.g. line 3: '{word}'",
    ):
        load(tmp_path / "in", Quarter.parse("2026-05"))


def test_non_finite_value_in_an_ncc11_parquet_input_names_the_row(tmp_path):
    from pipelines.ncc11.inputs import load
    from pipelines.periods import Quarter

    shutil.copytree(SAMPLE_NCC11, tmp_path / "in")
    contracts = pl.read_csv(tmp_path / "in" / "power_contracts.csv", infer_schema=False)
    contracts.with_columns(
        pl.col("power_kw").cast(pl.Float64), pl.col("price_usd_kw_month").cast(pl.Float64)
    ).with_columns(
        power_kw=pl.when(pl.int_range(pl.len()) == 4).then(float("inf")).otherwise(pl.col("power_kw")),
    ).write_parquet(tmp_path / "in" / "power_contracts.parquet")
    (tmp_path / "in" / "power_contracts.csv").unlink()
    with pytest.raises(InputError, match=r"(?s)power_contracts.parquet: 1 row.*column power_kw .*e.g. line 5: inf"):
        load(tmp_path / "in", Quarter.parse("2026-05"))


# --- registry: clashes name the point and the line; names from data never reach a path -----------


def _registry_failures(tmp_path: Path, extra: list[str]) -> str:
    from pipelines.quality import raise_on_errors
    from tests.metering.fixtures import REGISTRY

    write_registry(tmp_path, REGISTRY + extra)
    registry = reg.load_registry(tmp_path)
    assert reg.has_problems(registry)
    with pytest.raises(Exception) as raised:
        raise_on_errors(reg.validate(registry))
    return str(raised.value)


def test_registry_clashes_name_the_point_and_the_lines(tmp_path):
    message = _registry_failures(
        tmp_path,
        [
            "P1,PA,consumption,N1,DEV9,S9,vpn_direct,VPN-A,,,10.1.1.9,7701,2026-01-01,",  # line 5: P1 again
            "P7,PC,consumption,N1,DEV1,S7,vpn_direct,VPN-A,,,10.1.1.7,7701,2026-01-01,",  # line 6: DEV1 on a 2nd point
        ],
    )
    assert (
        '{"_point_overlap": "P1", "line": 2, "point_id": "P1"}; {"_point_overlap": "P1", "line": 5, "point_id": "P1"}'
        in message
    )
    assert (
        '{"_device_overlap": "DEV1", "line": 2, "point_id": "P1"}; {"_device_overlap": "DEV1", "line": 6, "point_id": "P7"}'
        in message
    )


@pytest.mark.parametrize(
    "point_id,participant,why",
    [
        ("P9", "../../evil", "participant '../../evil' contains a path separator"),
        ("P9", "..", "participant '..' is a path step"),
        ("P9", "PA\\PB", "participant 'PA\\\\PB' contains a path separator"),  # JSON-escaped in the GX detail
        ("P9", "PA\x00", "participant 'PA?' contains a control character (U+0000)"),
        ("P9", "PA\x1b[31m", "participant 'PA?[31m' contains a control character (U+001B)"),
        ("a/b", "PA", "point_id 'a/b' contains a path separator"),
        (".", "PA", "point_id '.' is a path step"),
        ("P\t9", "PA", "point_id 'P?9' contains a control character (U+0009)"),
    ],
)
def test_names_that_could_act_as_paths_are_rejected_with_their_line(tmp_path, point_id, participant, why):
    message = _registry_failures(
        tmp_path, [f"{point_id},{participant},consumption,N1,DEV9,S9,vpn_direct,VPN-A,,,10.1.1.9,7701,2026-01-01,"]
    )
    assert f"line 5: {why}" in message


def test_ordinary_codes_are_accepted(tmp_path):
    from tests.metering.fixtures import REGISTRY

    write_registry(
        tmp_path,
        REGISTRY + ["PM-010.b,EEGSA_2 S.A.,consumption,N1,DEV9,S9,vpn_direct,VPN-A,,,10.1.1.9,7701,2026-01-01,"],
    )
    registry = reg.load_registry(tmp_path)
    assert not reg.has_problems(registry)
    assert all(r.success for r in reg.validate(registry) if r.severity == "error")


# --- readings: other timestamp formats, non-finite values --------------------------------------


def _april_rows(fmt: str) -> list[str]:
    rows = series("DEV1", 1, 1).with_columns(pl.col("interval_end").str.replace(" ", fmt[0], literal=True) + fmt[1:])
    return [",".join(r) for r in rows.iter_rows()]


@pytest.mark.parametrize("fmt", [" :00", "T", "T:00"])
def test_seconds_and_t_separator_are_the_same_local_time(tmp_path, fmt):
    """`2026-04-01 00:15:00` and `2026-04-01T00:15` are unambiguous: read as the contract's time."""
    root = tmp_path / "in"
    write_registry(root)
    write_lines(root, "2026-04/PA.csv", _april_rows(fmt) + ["DEV1,2026-04-02 00:15:30,kwh_del,1.0"])
    staged = stage(root, tmp_path / "scratch")
    assert staged.unreadable == {}
    rows = staged.scan().collect()
    assert rows.filter(pl.col("cat") == readings.CATEGORY["good"]).height == 4 * 96
    # seconds other than :00 are no interval end: quarantined with the file's month (the job places them)
    bad = rows.filter(pl.col("cat") == readings.CATEGORY["unplaced"]).with_columns(reason=readings.reasons())
    assert bad.select("raw_interval_end", "reason").rows() == [
        ("2026-04-02 00:15:30", "unparsable interval_end (expected YYYY-MM-DD HH:MM)")
    ]


@pytest.mark.parametrize("suffix", ["Z", "-06:00", "+00:00"])
def test_a_file_with_zoned_timestamps_is_one_unreadable_file(tmp_path, suffix):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(root, "2026-04/PA.csv", _april_rows("T:00" + suffix))
    pl.read_csv(root / "readings" / "2026-04" / "PA.csv", infer_schema=False).write_parquet(
        root / "readings" / "PA.parquet"
    )
    staged = stage(root, tmp_path / "scratch")
    reasons = {staged.files[i].name: why for i, why in staged.unreadable.items()}
    example = f"2026-04-01T00:15:00{suffix}"
    expected = (
        f"interval_end carries a time zone (found e.g. {example!r}); "
        "the contract wants local Guatemala time as YYYY-MM-DD HH:MM, with no zone or offset"
    )
    assert reasons == {"PA.csv": expected, "PA.parquet": expected}
    assert staged.scan().collect().height == 0  # not thousands of quarantined rows


def test_a_file_where_no_timestamp_parses_is_one_unreadable_file(tmp_path):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(root, "2026-04/PA.csv", [f"DEV1,01/04/2026 00:{m:02d},kwh_del,1.0" for m in (15, 30, 45)] * 10)
    write_lines(root, "2026-04/PB.csv", _april_rows(" "))
    staged = stage(root, tmp_path / "scratch")
    reasons = {staged.files[i].name: why for i, why in staged.unreadable.items()}
    assert reasons == {
        "PA.csv": "no interval_end of the file parses (found e.g. '01/04/2026 00:15'); "
        "the contract wants local Guatemala time as YYYY-MM-DD HH:MM, with no zone or offset"
    }
    rows = staged.scan().collect()
    assert rows.height == 4 * 96 and rows["cat"].unique().to_list() == [readings.CATEGORY["good"]]


@pytest.mark.parametrize("word", ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_readings_are_quarantined_as_not_a_number(tmp_path, word):
    root = tmp_path / "in"
    write_registry(root)
    write_lines(root, "2026-04/PA.csv", ["DEV1,2026-04-02 00:15,kwh_del,1.5", f"DEV1,2026-04-02 00:30,kwh_del,{word}"])
    rows = stage(root, tmp_path / "scratch").scan().with_columns(reason=readings.reasons()).collect()
    assert rows.filter(pl.col("cat") == readings.CATEGORY["good"])["v"].to_list() == [1.5]
    bad = rows.filter(pl.col("cat") == readings.CATEGORY["quarantine"])
    assert bad.select("raw_value", "reason").rows() == [(word, "value is not a number")]


@pytest.mark.parametrize("header", ["exact", "bom"])  # the multi-file scan, and the tolerant per-file path
def test_fields_padded_with_blanks_are_read_as_written_without_them(tmp_path, header):
    """Spaces, tabs and other Unicode blanks around a field are not part of it; an empty device_id is
    missing (not unknown); a timestamp with anything else after it does not parse."""
    root = tmp_path / "in"
    write_registry(root)
    path = write_lines(
        root,
        "2026-04/PA.csv",
        [
            "DEV1 ,\t2026-04-02 00:15\u00a0, kwh_del , 1.5 ",
            "\u3000DEV1,  2026-04-02 00:30 ,kwh_del,\t2.25\u2003",
            " ,2026-04-02 00:45,kwh_del,1.0",
            "DEV1,2026-04-02 01:00 x,kwh_del,1.0",
            "DEV1,2026-04-02 01:15,kwh_del, ",
        ],
    )
    if header == "bom":
        path.write_text("\ufeff" + path.read_text(encoding="utf-8"), encoding="utf-8")
    rows = stage(root, tmp_path / "scratch").scan().with_columns(reason=readings.reasons()).sort("row").collect()
    good = rows.filter(pl.col("cat") == readings.CATEGORY["good"])
    assert good["v"].to_list() == [1.5, 2.25]
    bad = rows.filter(pl.col("cat") != readings.CATEGORY["good"])
    assert bad["reason"].to_list() == [
        "missing device_id",
        "unparsable interval_end (expected YYYY-MM-DD HH:MM)",
        "missing value",
    ]


def test_a_value_holding_the_line_scan_separator_is_quarantined_not_cut_short(tmp_path):
    """Found by the property test: on the tolerant per-file path '1.5<U+001F>9' used to read as 1.5."""
    root = tmp_path / "in"
    write_registry(root)
    (root / "readings").mkdir()
    (root / "readings" / "PA.csv").write_bytes(  # the ragged second line sends the file to the tolerant path
        b"device_id,interval_end,channel,value\nDEV1,2026-04-02 00:15,kwh_del,1.5\x1f9\nDEV1,2026-04-02 00:30,kwh_del,1.6,x\n"
    )
    rows = stage(root, tmp_path / "scratch").scan().with_columns(reason=readings.reasons()).collect()
    assert rows.filter(pl.col("cat") == readings.CATEGORY["good"]).height == 0
    assert rows["reason"].to_list()[0].startswith("line holds the control character U+001F")
