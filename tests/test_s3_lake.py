"""The lake on s3:// (issue #22, item 2), against a real S3 endpoint: moto's server in its own process
(tests/s3server.py). The catalog stays a local SQLite file; DuckLake writes its data files to the
bucket through httpfs with the credentials of the AWS_* variables, and `mayorista sql` / `history` /
`report` read them back (the report is written to <lake>/reports/ on the bucket).

An NCC-11 quarter (the sample) and a small meter month (tests/metering/fixtures.py) run once with the
lake and the landing zone on the bucket and once on local folders: the published rows must be equal. The secret key is
never printed, logged or shown by DuckDB."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from pipelines import config, warehouse
from pipelines.metering.job import ingest_month
from pipelines.ncc11 import job as ncc11
from tests import s3server
from tests.metering import fixtures

TABLES = ("ncc11_energy", "ncc11_total_cost", "meter_readings", "meter_hourly", "meter_completeness", "landed_files")
SAMPLE = config.ROOT / "data" / "sample"
MAYORISTA = str(Path(sys.executable).parent / "mayorista")


def _run_all(landing: str | Path, catalog: Path, lake: str | Path) -> None:
    ncc11.run("2026-05", f"{landing}/ncc11/2026-05", warehouse=catalog, lake_root=lake)
    ingest_month("2026-04", f"{landing}/smec", warehouse=catalog, lake_root=lake)


@pytest.fixture(scope="module")
def lakes(s3: s3server.S3Server, tmp_path_factory: pytest.TempPathFactory):
    """The same runs with the lake on the bucket and on a local folder (the catalogs are local files)."""
    base = tmp_path_factory.mktemp("s3lake")
    landing = base / "landing"
    fixtures.standard_month(landing / "smec")
    shutil.copytree(SAMPLE / "ncc11" / "2026-05", landing / "ncc11" / "2026-05")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3.env().items():
            mp.setenv(name, value)
        mp.chdir(base)  # a folder named "s3:" would appear here if anything took the URL for a path
        bucket = s3server.make_bucket(s3)
        lake = f"s3://{bucket}/lake"
        s3server.upload(s3, landing, f"s3://{bucket}/landing")  # the inputs on the bucket too
        _run_all(f"s3://{bucket}/landing", base / "s3.sqlite", lake)
        _run_all(landing, base / "local.sqlite", base / "lake")
        yield base, bucket, lake, dict(os.environ)  # the AWS_* variables stay set for the module's tests


def test_s3_lake_publishes_the_same_rows_as_a_local_lake(lakes):
    base, _, _, _ = lakes
    remote, local = s3server.tables(base / "s3.sqlite", TABLES), s3server.tables(base / "local.sqlite", TABLES)
    for table in TABLES:
        assert remote[table].height > 0, table
        # parallel sums may differ in the last bits between any two runs, whatever the lake
        assert_frame_equal(remote[table], local[table], check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_data_files_and_reports_are_in_the_bucket(lakes, s3):
    base, bucket, lake, env = lakes
    con = warehouse.connect(base / "s3.sqlite", read_only=True)
    try:
        paths = [r[0] for r in con.sql("SELECT data_file FROM ducklake_list_files('wh', 'meter_hourly')").fetchall()]
    finally:
        con.close()
    assert paths and all(p.startswith(f"{lake}/main/meter_hourly/") for p in paths), paths[:3]
    # the objects are really on the endpoint: PUT by DuckDB's httpfs, one per data file at least
    assert s3.requests("PUT", f"/{bucket}/lake/main/meter_hourly/") >= len(paths)
    assert not any(base.glob("s3:*"))


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MAYORISTA, *args], capture_output=True, text=True, env=env, timeout=300)


def test_sql_history_and_report_read_the_s3_lake(lakes, s3):
    base, bucket, lake, env = lakes
    catalog = str(base / "s3.sqlite")
    env = {**env, "MAYORISTA_LOG_LEVEL": "DEBUG"}  # everything logged: still no secret in it
    env.pop("MAYORISTA_LAKE", None)  # the catalog knows where its data files are
    sql = _cli(env, "sql", "--warehouse", catalog, "--csv", "SELECT count(*) AS n FROM meter_readings")
    assert sql.returncode == 0, sql.stderr
    local = s3server.tables(base / "local.sqlite", ("meter_readings",))["meter_readings"].height
    assert sql.stdout.split() == ["n", str(local)]
    history = _cli(env, "history", "meters", "--period", "2026-04", "--warehouse", catalog)
    assert history.returncode == 0 and "meters-2026-04" in history.stdout, history.stderr
    report = _cli(env, "report", "meters", "--month", "2026-04", "--warehouse", catalog, "--lake", lake)
    assert report.returncode == 0, report.stderr
    assert f"{lake}/reports/meters/month=2026-04/" in report.stdout
    assert s3.requests("PUT", f"/{bucket}/lake/reports/meters/month=2026-04/") >= 1  # s3fs wrote it there
    secret = env["AWS_SECRET_ACCESS_KEY"]
    for out in (sql, history, report):
        assert secret not in out.stdout and secret not in out.stderr
    # DuckDB shows the secret only redacted, and an analyst cannot ask for it unredacted
    shown = _cli(env, "sql", "--warehouse", catalog, "--csv", "SELECT secret_string FROM duckdb_secrets()")
    assert secret not in shown.stdout + shown.stderr


def test_an_s3_landing_stays_a_url_from_the_environment_and_the_command_line(monkeypatch):
    """A Path would fold `s3://` into `s3:/`: the landing root and --input keep the URL as text."""
    from pipelines import cli

    monkeypatch.setenv("MAYORISTA_LANDING", "s3://bucket/landing/")
    settings = config.Settings.resolve()
    assert settings.inputs("ncc11", "2026-05") == "s3://bucket/landing/ncc11/2026-05"
    assert settings.inputs("meters") == "s3://bucket/landing/smec"
    args = cli.build_parser().parse_args(["meters", "ingest", "--month", "2026-04", "--input", "s3://b/landing/smec"])
    assert args.input == "s3://b/landing/smec"
    args = cli.build_parser().parse_args(
        ["backfill", "meters", "--from", "2026-04", "--to", "2026-04", "--landing", "x"]
    )
    assert args.landing == Path("x")
