"""The DuckLake warehouse: time travel to a run's snapshot, failed runs recorded without touching the
published rows, re-runs that replace (never duplicate), runs at once, no network at run time, the
catalog file, and maintenance that keeps NCC-11's snapshots.

Pipeline runs are the slow part (the GX import, then a few seconds each): the NCC-11 history is built
once per module, and inputs are small (the bundled NCC-11 sample quarter, hand-made SMEC months)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines import cli, config, maintenance, warehouse
from pipelines.delivery import sample as delivery_sample
from pipelines.delivery.job import check_month
from pipelines.errors import InputError, MayoristaError
from pipelines.manifest import file_sha256
from pipelines.metering.job import ingest_month
from pipelines.ncc11 import job as ncc11
from pipelines.warehouse import Write, registry
from tests.conftest import ROOT
from tests.delivery.fixtures import write_sample_registry as write_delivery_registry
from tests.metering.fixtures import standard_month
from tests.ncc11.fixtures import write_quarter

SAMPLE_QUARTER = "2026-05"
NCC11_TABLES = ("ncc11_energy", "ncc11_power_month", "ncc11_power")
ORDER = {"ncc11_energy": "distributor, band", "ncc11_power_month": "month, distributor", "ncc11_power": "distributor"}


def figures(catalog: Path, table: str, quarter: str, snapshot: int | None = None) -> pl.DataFrame:
    """A table's rows for the quarter (current, or as of a snapshot), without the run id, in key order."""
    at = f" AT (VERSION => {int(snapshot)})" if snapshot is not None else ""
    frame = warehouse.query(f"SELECT * FROM {table}{at} WHERE quarter = ? ORDER BY {ORDER[table]}", catalog, [quarter])
    return frame.drop("run_id", strict=False)


def manifests(catalog: Path, pipeline: str | None = None) -> pl.DataFrame:
    where = "WHERE pipeline = ?" if pipeline else ""
    return warehouse.query(
        f"SELECT * FROM run_manifests {where} ORDER BY started_at, finished_at",
        catalog,
        [pipeline] if pipeline else None,
    )


def counts(catalog: Path, tables: tuple[str, ...]) -> dict[str, int]:
    return {t: warehouse.query(f"SELECT count(*) AS n FROM {t}", catalog)["n"][0] for t in tables}


def cli_subprocess(args: list[str], *, wrapper: str | None = None, timeout: float = 300) -> subprocess.Popen:
    code = wrapper or "import sys; from pipelines import cli; sys.exit(cli.main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# --- NCC-11: one quarter run, changed, run again, then a failed run ------------------------------------


@pytest.fixture(scope="module")
def ncc11_history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("ncc11-history")
    catalog, lake = base / "warehouse.sqlite", base / "lake"
    inputs = base / "in"
    shutil.copytree(ROOT / "data" / "sample" / "ncc11" / SAMPLE_QUARTER, inputs)
    first_hashes = {p.name: file_sha256(p) for p in inputs.iterdir()}

    first = ncc11.run(SAMPLE_QUARTER, inputs, warehouse=catalog, lake_root=lake)
    first_figures = {t: figures(catalog, t, SAMPLE_QUARTER) for t in NCC11_TABLES}
    first_summary = ncc11.summary(SAMPLE_QUARTER, catalog, snapshot_id=first.snapshot_id, run_id=first.run_id)

    # an input changes (the nodal prices go up 10%) and the quarter is run again
    prices = pl.read_csv(inputs / "nodal_prices.csv", infer_schema=False)
    prices.with_columns(price_usd_mwh=(pl.col("price_usd_mwh").cast(pl.Float64) * 1.1).round(4)).write_csv(
        inputs / "nodal_prices.csv"
    )
    second = ncc11.run(SAMPLE_QUARTER, inputs, warehouse=catalog, lake_root=lake)
    second_figures = {t: figures(catalog, t, SAMPLE_QUARTER) for t in NCC11_TABLES}

    # a third run on broken input fails and must leave the second run's rows as they are
    spot = pl.read_csv(inputs / "spot_demand.csv", infer_schema=False)
    spot.drop("energy_mwh").write_csv(inputs / "spot_demand.csv")
    with pytest.raises(InputError) as failure:
        ncc11.run(SAMPLE_QUARTER, inputs, warehouse=catalog, lake_root=lake)
    spot.write_csv(inputs / "spot_demand.csv")
    return {
        "catalog": catalog,
        "lake": lake,
        "first": first,
        "second": second,
        "first_figures": first_figures,
        "second_figures": second_figures,
        "first_summary": first_summary,
        "first_hashes": first_hashes,
        "failure": str(failure.value),
    }


def test_time_travel_reproduces_the_first_run(ncc11_history):
    h = ncc11_history
    catalog, first, second = h["catalog"], h["first"], h["second"]
    # the current figures changed with the input
    assert not h["second_figures"]["ncc11_energy"]["ccs_usd"].equals(h["first_figures"]["ncc11_energy"]["ccs_usd"])
    ratio = h["second_figures"]["ncc11_energy"]["peste_usd_mwh"] / h["first_figures"]["ncc11_energy"]["peste_usd_mwh"]
    assert ratio.drop_nulls().to_list() == pytest.approx([1.1] * ratio.drop_nulls().len(), rel=1e-3)
    for table in NCC11_TABLES:
        assert_frame_equal(
            figures(catalog, table, SAMPLE_QUARTER), h["second_figures"][table], check_exact=False, rel_tol=1e-9
        )
    # both runs are in run_manifests, each with its own snapshot
    published = manifests(catalog, "ncc11").filter(pl.col("status") == "published")
    assert published["run_id"].to_list() == [first.run_id, second.run_id]
    assert published["snapshot_id"].to_list() == [first.snapshot_id, second.snapshot_id]
    assert first.snapshot_id < second.snapshot_id
    # reading as of the first run's snapshot gives the first run's figures exactly
    for table in NCC11_TABLES:
        assert_frame_equal(
            figures(catalog, table, SAMPLE_QUARTER, first.snapshot_id),
            h["first_figures"][table],
            check_exact=False,
            rel_tol=1e-9,
            abs_tol=0,
        )
    # and the summary as of that snapshot prints them
    assert (
        ncc11.summary(SAMPLE_QUARTER, catalog, snapshot_id=first.snapshot_id, run_id=first.run_id) == h["first_summary"]
    )
    later = ncc11.summary(SAMPLE_QUARTER, catalog, snapshot_id=second.snapshot_id, run_id=first.run_id)
    assert later.splitlines()[2:] != h["first_summary"].splitlines()[2:]  # the figures, not the header


def test_failed_ncc11_run_is_recorded_and_changes_nothing(ncc11_history):
    h = ncc11_history
    catalog = h["catalog"]
    assert "spot_demand" in h["failure"] and "energy_mwh" in h["failure"]
    for table in NCC11_TABLES:  # still the second run's rows
        assert_frame_equal(
            figures(catalog, table, SAMPLE_QUARTER), h["second_figures"][table], check_exact=False, rel_tol=1e-9
        )
    runs = manifests(catalog, "ncc11")
    assert runs["status"].to_list() == ["published", "published", "failed"]
    failed = runs.row(2, named=True)
    assert failed["snapshot_id"] is None and failed["period"] == SAMPLE_QUARTER
    manifest = json.loads(failed["manifest"])
    assert manifest["status"] == "failed" and "energy_mwh" in manifest["reason"]
    assert failed["run_id"] not in (h["first"].run_id, h["second"].run_id)


def test_ncc11_rerun_replaces_never_duplicates(ncc11_history):
    h = ncc11_history
    for table in NCC11_TABLES:
        assert h["first_figures"][table].height == h["second_figures"][table].height > 0
        assert counts(h["catalog"], (table,))[table] == h["first_figures"][table].height
    assert h["first_figures"]["ncc11_energy"].height == 4 * 3  # four distributors, three bands


def test_history_lists_runs_with_snapshots_and_input_hashes(ncc11_history, capsys):
    h = ncc11_history
    assert cli.main(["history", "ncc11", "--period", SAMPLE_QUARTER, "--warehouse", str(h["catalog"])]) == 0
    out = capsys.readouterr().out
    failed_id = manifests(h["catalog"], "ncc11").filter(pl.col("status") == "failed")["run_id"][0]
    lines = out.splitlines()
    assert lines[0] == f"ncc11 {SAMPLE_QUARTER}: 3 run(s)"
    run_lines = [line for line in lines if line.startswith("- ")]
    assert [line.split()[1] for line in run_lines] == [h["first"].run_id, h["second"].run_id, failed_id]
    assert "published" in run_lines[0] and f"snapshot {h['first'].snapshot_id}" in run_lines[0]
    assert "published" in run_lines[1] and f"snapshot {h['second'].snapshot_id}" in run_lines[1]
    assert "failed" in run_lines[2] and "snapshot -" in run_lines[2]
    # the first run's input files with their hashes (nodal_prices changed before the second run)
    first_block = out.split(run_lines[1])[0]
    for name, digest in h["first_hashes"].items():
        assert f"input {name}  sha256 {digest}" in first_block
    assert h["first_hashes"]["nodal_prices.csv"] not in out.split(run_lines[1])[1].split(run_lines[2])[0]
    assert "reason:" in out
    # another period, or a pipeline with no runs
    assert cli.main(["history", "meters", "--period", "2026-04", "--warehouse", str(h["catalog"])]) == 0
    assert "no meters runs for 2026-04" in capsys.readouterr().out


# --- meters and delivery: failed runs and re-runs -------------------------------------------------------

METER_TABLES = ("meter_readings", "meter_completeness", "meter_hourly", "vee_findings", "quarantine", "metering_points")


def test_meters_rerun_replaces_and_a_failed_run_changes_nothing(tmp_path):
    catalog, lake, root = tmp_path / "warehouse.sqlite", tmp_path / "lake", tmp_path / "smec"
    standard_month(root)
    first = ingest_month("2026-04", root, warehouse=catalog, lake_root=lake)
    after_first = counts(catalog, METER_TABLES)
    second = ingest_month("2026-04", root, warehouse=catalog, lake_root=lake)
    assert counts(catalog, METER_TABLES) == after_first
    assert after_first["meter_readings"] == 4 * (2880 + 1440 + 960)
    completeness = warehouse.query("SELECT * FROM meter_completeness ORDER BY ALL", catalog)

    (root / "metering_points.csv").unlink()  # the registry is missing
    with pytest.raises(MayoristaError, match="metering_points"):
        ingest_month("2026-04", root, warehouse=catalog, lake_root=lake)
    assert counts(catalog, METER_TABLES) == after_first
    assert_frame_equal(warehouse.query("SELECT * FROM meter_completeness ORDER BY ALL", catalog), completeness)
    runs = manifests(catalog, "meters")
    assert runs["status"].to_list() == ["published", "published", "failed"]
    assert runs["snapshot_id"].to_list()[:2] == [first.snapshot_id, second.snapshot_id]
    assert runs["snapshot_id"][2] is None
    assert "metering_points" in json.loads(runs["manifest"][2])["reason"]


DELIVERY_TABLES = ("vpn_change_review", "delivery_compliance", "delivery_points", "estimated_hourly")


def test_delivery_rerun_replaces_and_a_failed_run_changes_nothing(tmp_path):
    catalog, lake, root = tmp_path / "warehouse.sqlite", tmp_path / "lake", tmp_path / "smec"
    write_delivery_registry(root)
    delivery_sample.generate(root)
    check_month("2026-04", root, warehouse=catalog, lake_root=lake)
    after_first = counts(catalog, DELIVERY_TABLES)
    check_month("2026-04", root, warehouse=catalog, lake_root=lake)
    assert counts(catalog, DELIVERY_TABLES) == after_first
    assert after_first["vpn_change_review"] == 5 * 5  # five changes, five rules each
    review = warehouse.query(
        "SELECT * EXCLUDE (run_id) FROM vpn_change_review ORDER BY ALL"
        if "run_id" in warehouse.query("DESCRIBE vpn_change_review", catalog)["column_name"]
        else "SELECT * FROM vpn_change_review ORDER BY ALL",
        catalog,
    )

    # a malformed vpn_changes file: a required column is gone
    changes = pl.read_csv(root / "vpn_changes.csv", infer_schema=False)
    changes.drop("executed_on").write_csv(root / "vpn_changes.csv")
    with pytest.raises(MayoristaError, match="executed_on"):
        check_month("2026-04", root, warehouse=catalog, lake_root=lake)
    assert counts(catalog, DELIVERY_TABLES) == after_first
    again = warehouse.query(
        "SELECT * EXCLUDE (run_id) FROM vpn_change_review ORDER BY ALL"
        if "run_id" in review.columns
        else "SELECT * FROM vpn_change_review ORDER BY ALL",
        catalog,
    )
    assert_frame_equal(again.drop("run_id", strict=False), review.drop("run_id", strict=False))
    runs = manifests(catalog, "delivery")
    assert runs["status"].to_list() == ["published", "published", "failed"]
    assert runs["snapshot_id"][2] is None and runs["snapshot_id"][0] != runs["snapshot_id"][1]
    assert "executed_on" in json.loads(runs["manifest"][2])["reason"]


# --- runs at once -----------------------------------------------------------------------------------------


def _wait(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"a run did not end within {timeout} s: {err[-2000:]}")
        done.append((proc.returncode, out, err))
    return done


def test_runs_of_different_quarters_at_once_both_land(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    march, june = write_quarter(tmp_path / "march", "2026-03"), write_quarter(tmp_path / "june", "2026-06")
    procs = [
        cli_subprocess(["ncc11", "--quarter", q, "--input", str(d), "--warehouse", str(catalog), "--lake", str(lake)])
        for q, d in (("2026-03", march), ("2026-06", june))
    ]
    for rc, _, err in _wait(procs):
        assert rc == 0, err[-3000:]
    rows = warehouse.query("SELECT quarter, count(*) AS n FROM ncc11_energy GROUP BY 1 ORDER BY 1", catalog)
    assert rows.rows() == [("2026-03", 6), ("2026-06", 6)]
    runs = manifests(catalog, "ncc11")
    assert sorted(runs["period"].to_list()) == ["2026-03", "2026-06"]
    assert runs["status"].to_list() == ["published", "published"]
    assert runs["snapshot_id"].n_unique() == 2


def test_runs_of_the_same_quarter_at_once_leave_one_runs_rows(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    cheap, dear = write_quarter(tmp_path / "cheap"), write_quarter(tmp_path / "dear")
    # the second input differs in every table: energy prices doubled, PREFPOT 9.5 instead of 8.5
    prices = pl.read_csv(dear / "nodal_prices.csv")
    prices.with_columns(pl.col("price_usd_mwh") * 2).write_csv(dear / "nodal_prices.csv")
    pl.DataFrame({"name": ["prefpot_usd_kw_month"], "value": [9.5]}).write_csv(dear / "parameters.csv")
    procs = [
        cli_subprocess(
            ["ncc11", "--quarter", "2026-03", "--input", str(d), "--warehouse", str(catalog), "--lake", str(lake)]
        )
        for d in (cheap, dear)
    ]
    for rc, _, err in _wait(procs):
        assert rc == 0, err[-3000:]
    runs = manifests(catalog, "ncc11")
    assert runs["status"].to_list() == ["published", "published"]
    snapshots = runs["snapshot_id"].to_list()
    assert len(set(snapshots)) == 2
    # no duplicates, no mix: every table holds exactly the rows of the run that committed last
    winner, loser = max(snapshots), min(snapshots)
    for table in NCC11_TABLES:
        current = figures(catalog, table, "2026-03")
        assert current.height == {"ncc11_energy": 6, "ncc11_power_month": 6, "ncc11_power": 2}[table]
        assert_frame_equal(current, figures(catalog, table, "2026-03", winner), check_exact=False, rel_tol=1e-9)
    # and the two runs really published different figures (so the check above can tell them apart)
    assert not figures(catalog, "ncc11_power", "2026-03", loser)["scp_usd"].equals(
        figures(catalog, "ncc11_power", "2026-03", winner)["scp_usd"]
    )
    d1 = figures(catalog, "ncc11_energy", "2026-03").filter(pl.col("distributor") == "D1")
    assert d1["peste_usd_mwh"].unique().len() == 1  # all bands from one run


# --- no network, the catalog file -------------------------------------------------------------------------

NO_NETWORK = """
import socket, sys
def _blocked(*args, **kwargs):
    raise OSError("network access is blocked in this test")
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
socket.create_connection = _blocked
socket.getaddrinfo = _blocked
from pipelines import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_run_needs_no_network(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    proc = cli_subprocess(
        [
            "ncc11",
            "--quarter",
            SAMPLE_QUARTER,
            "--input",
            str(ROOT / "data" / "sample" / "ncc11" / SAMPLE_QUARTER),
            "--warehouse",
            str(catalog),
            "--lake",
            str(lake),
        ],
        wrapper=NO_NETWORK,
    )
    ((rc, out, err),) = _wait([proc])
    assert rc == 0, err[-3000:]
    assert "NCC-11 quarter 2026-05 published" in out
    assert warehouse.query("SELECT count(*) AS n FROM ncc11_energy", catalog)["n"][0] == 12
    con = warehouse.connect(catalog, read_only=True)
    try:
        for setting in ("autoinstall_known_extensions", "autoload_known_extensions"):
            assert con.sql(f"SELECT current_setting('{setting}')").fetchone()[0] in (False, "false")
    finally:
        con.close()


def test_a_missing_catalog_is_created_by_a_writer(tmp_path):
    catalog, lake = tmp_path / "new" / "folder" / "warehouse.sqlite", tmp_path / "lake"
    with pytest.raises(MayoristaError, match="no warehouse at"):
        warehouse.query("SELECT 1", catalog)  # a reader does not create it
    assert not catalog.exists()
    warehouse.publish([Write("t", pl.DataFrame({"x": [1, 2]}))], catalog, lake_root=lake)
    assert catalog.exists()
    assert warehouse.query("SELECT sum(x) AS s FROM t", catalog)["s"][0] == 3


def test_a_file_that_is_not_a_catalog_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a catalog\n" * 100)
    with pytest.raises(MayoristaError, match="is not a warehouse catalog"):
        warehouse.connect(text, read_only=True)
    with pytest.raises(MayoristaError, match="is not a warehouse catalog"):
        warehouse.connect(text, lake_root=tmp_path / "lake")
    assert cli.main(["sql", "--warehouse", str(text), "SELECT 1"]) == 2
    err = capsys.readouterr().err
    assert "is not a warehouse catalog" in err and str(text) in err and "Traceback" not in err
    assert text.read_text() == "this is not a catalog\n" * 100  # left as it was


# --- the storage boundary: registry, reader, settings -----------------------------------------------------


def test_writes_take_their_partition_from_the_registry():
    assert Write("ncc11_energy", "x.parquet", {"quarter": "2026-05"}).partition == ("quarter",)
    assert Write("metering_points", "x.parquet", {"source_file": "m.csv"}).partition == ()
    assert Write("landed_files", "x.parquet").partition == ()
    assert Write("validation_results", "x.parquet", {"run_id": "r"}).partition == ("period",)
    assert Write("scratch_table", "x.parquet").partition == ()  # not registered: as given
    built = registry.table("meter_hourly").replace("x.parquet", "2026-04", adopt=True)
    assert (built.table, built.where, built.partition, built.adopt) == (
        "meter_hourly",
        {"month": "2026-04"},
        ("month",),
        True,
    )
    assert Write("ncc11_energy", "x.parquet", {"month": "2026-05"}, ("month",)).partition == ("month",)  # warned
    empty = registry.table("ncc11_total_cost").empty()
    assert empty.height == 0 and empty.columns[:3] == ["quarter", "month", "distributor"]


def test_a_reader_reads_one_snapshot(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    with warehouse.open_reader(catalog, missing_ok=True) as nothing:
        assert not nothing.found and not nothing.has("t")
    warehouse.publish([Write("t", pl.DataFrame({"p": ["a"], "x": [1]}), {"p": "a"})], catalog, lake_root=lake)
    with warehouse.open_reader(catalog) as first:
        pass  # (an open reader in this process would hold the SQLite catalog against the next publish)
    warehouse.publish([Write("t", pl.DataFrame({"p": ["a"], "x": [2]}), {"p": "a"})], catalog, lake_root=lake)
    with warehouse.open_reader(catalog, snapshot_id=first.snapshot_id) as before:
        assert before.frame("SELECT x FROM {t}", t="t")["x"].to_list() == [1]
        keys = pl.DataFrame({"x": [1]})
        assert before.frame("SELECT t.x FROM {t} t JOIN _k USING (x)", frames={"_k": keys}, t="t").height == 1
    with warehouse.open_reader(catalog) as after:
        assert after.snapshot_id > first.snapshot_id
        assert after.frame("SELECT x FROM {t}", t="t")["x"].to_list() == [2]


def test_a_result_through_a_spill_file_is_the_same_frame(tmp_path):
    """`Reader.frame(..., spill=folder)`: DuckDB writes the result, polars reads it back; the rows, their
    order, the types and the empty result are those of the plain way, and no file is left behind."""
    catalog, lake, spill = tmp_path / "warehouse.sqlite", tmp_path / "lake", tmp_path / "spill"
    rows = pl.DataFrame(
        {
            "p": ["a"] * 4,
            "k": [3, 1, 2, None],
            "v": [1.5, float("nan"), -0.0, None],
            "ts": pl.Series([1, 2, 3, None]).cast(pl.Datetime("us")),
            "s": ["x", None, "ñ", "z"],
            "b": [True, False, None, True],
        }
    )
    warehouse.publish([Write("t", rows, {"p": "a"})], catalog, lake_root=lake)
    with warehouse.open_reader(catalog) as src:
        for sql, params in [
            ("SELECT k, v, ts, s, b, k * ? AS k2 FROM {t} ORDER BY k DESC NULLS FIRST", [4]),
            ("SELECT k::INTEGER AS i, v FROM {t} WHERE s = ?", ["nothing"]),
        ]:
            plain = src.frame(sql, params, t="t")
            spilled = src.frame(sql, params, spill=spill, t="t")
            assert_frame_equal(spilled, plain)
        assert src.frame("SELECT count(*) AS n FROM {t}", spill=spill, t="t")["n"].to_list() == [4]
    assert list(spill.iterdir()) == []


def test_a_run_given_another_lake_than_the_catalogs_stops_before_its_work(tmp_path):
    """A lake given explicitly that is not the one the catalog keeps its files under: a metering run
    fails before it plans or reads anything (the publish would refuse it only after all the work), with
    the same message as the publish; a reader for an analyst still reads."""
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    warehouse.publish([Write("t", pl.DataFrame({"p": ["a"], "x": [1]}), {"p": "a"})], catalog, lake_root=lake)
    landing = tmp_path / "smec"
    (landing / "readings").mkdir(parents=True)  # nothing to read: a run that got as far as its plan says so
    shutil.copy(ROOT / "data" / "sample" / "smec" / "metering_points.csv", landing)
    with pytest.raises(MayoristaError, match="keeps its data files under another lake") as raised:
        ingest_month("2026-03", landing, warehouse=catalog, lake_root=tmp_path / "elsewhere")
    assert "no readings files" not in str(raised.value) and str(lake) in str(raised.value)
    with warehouse.open_reader(config.Settings.resolve(warehouse=catalog, lake=tmp_path / "elsewhere")) as src:
        assert src.frame("SELECT x FROM {t}", t="t")["x"].to_list() == [1]
    with pytest.raises(InputError, match="no readings files"):
        ingest_month("2026-03", landing, warehouse=catalog, lake_root=lake)


def test_settings_are_resolved_once_and_carried(tmp_path, monkeypatch):
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / "env.sqlite"))
    monkeypatch.delenv("MAYORISTA_LAKE", raising=False)
    settings = config.Settings.resolve(lake=tmp_path / "lake")
    assert settings.warehouse == str(tmp_path / "env.sqlite") and settings.lake_given
    monkeypatch.setenv("MAYORISTA_WAREHOUSE", str(tmp_path / "other.sqlite"))
    assert warehouse.settings(settings) is settings  # resolved settings are never resolved again
    assert warehouse.describe(settings) == str(tmp_path / "env.sqlite")
    assert not config.Settings.resolve().lake_given  # the default lake


# --- maintenance ----------------------------------------------------------------------------------------


def test_maintenance_expires_old_snapshots_but_keeps_ncc11s(tmp_path):
    catalog, lake = tmp_path / "warehouse.sqlite", tmp_path / "lake"
    quarter = write_quarter(tmp_path / "q")
    first = ncc11.run("2026-03", quarter, warehouse=catalog, lake_root=lake)
    first_energy = figures(catalog, "ncc11_energy", "2026-03")
    prices = pl.read_csv(quarter / "nodal_prices.csv")
    prices.with_columns(pl.col("price_usd_mwh") + 10).write_csv(quarter / "nodal_prices.csv")
    second = ncc11.run("2026-03", quarter, warehouse=catalog, lake_root=lake)
    meters_root = tmp_path / "smec"
    standard_month(meters_root)
    ingest_month("2026-04", meters_root, warehouse=catalog, lake_root=lake)
    meter_snapshot = ingest_month("2026-04", meters_root, warehouse=catalog, lake_root=lake).snapshot_id
    current_energy = figures(catalog, "ncc11_energy", "2026-03")
    hourly = warehouse.query("SELECT count(*) AS n FROM meter_hourly", catalog)["n"][0]
    before = set(warehouse.query("SELECT snapshot_id FROM ducklake_snapshots('wh')", catalog)["snapshot_id"])

    result = maintenance.maintain(catalog, retention_days=0)

    after = set(warehouse.query("SELECT snapshot_id FROM ducklake_snapshots('wh')", catalog)["snapshot_id"])
    assert result.expired and set(result.expired) <= before and not set(result.expired) & after
    assert {first.snapshot_id, second.snapshot_id} <= after
    assert sorted(result.kept_for_ncc11) == sorted({first.snapshot_id, second.snapshot_id})
    assert meter_snapshot in after or meter_snapshot == max(before)  # the current snapshot always stays
    assert "expired" in result.summary
    # NCC-11's snapshots still read, as published
    assert_frame_equal(
        figures(catalog, "ncc11_energy", "2026-03", first.snapshot_id), first_energy, check_exact=False, rel_tol=1e-9
    )
    assert_frame_equal(
        figures(catalog, "ncc11_energy", "2026-03", second.snapshot_id), current_energy, check_exact=False, rel_tol=1e-9
    )
    # and the current data still reads
    assert_frame_equal(figures(catalog, "ncc11_energy", "2026-03"), current_energy, check_exact=False, rel_tol=1e-9)
    assert warehouse.query("SELECT count(*) AS n FROM meter_hourly", catalog)["n"][0] == hourly
    assert warehouse.query("SELECT count(*) AS n FROM meter_readings", catalog)["n"][0] == 4 * (2880 + 1440 + 960)
    # every data file the catalog still lists is there
    files = warehouse.query("SELECT data_file FROM ducklake_list_files('wh', 'meter_readings')", catalog)["data_file"]
    assert files.len() and all(Path(f).exists() for f in files)
    # the CLI runs the same maintenance
    assert cli.main(["maintain", "--warehouse", str(catalog), "--retention-days", "0"]) == 0
    assert_frame_equal(
        figures(catalog, "ncc11_energy", "2026-03", first.snapshot_id), first_energy, check_exact=False, rel_tol=1e-9
    )
