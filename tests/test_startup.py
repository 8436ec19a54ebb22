"""What a command imports and prepares when it starts (issue #25), checked without a clock: the
figures themselves are bench/sql_startup.py's.

- `mayorista --help` imports neither DuckDB nor any heavy library; `mayorista sql` (one query as CSV,
  or a session) imports DuckDB and the standard library only: no polars, pandas, numpy, pyarrow,
  fsspec, Great Expectations, Airflow. The table view adds polars (and the pyarrow and numpy that
  DuckDB's `.pl()` goes through), never pandas.
- The DuckDB extensions are installed once, from the wheels' files, and afterwards only loaded; a
  damaged installed file is replaced from the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines import warehouse
from pipelines.warehouse import Write, catalog
from tests.conftest import ROOT

HEAVY = (
    "polars",
    "pandas",
    "numpy",
    "pyarrow",
    "fsspec",
    "upath",
    "great_expectations",
    "airflow",
    "sqlalchemy",
    "matplotlib",
    "weasyprint",
    "jinja2",
)

# runs the CLI in a fresh interpreter, then prints which of the modules named in argv[1] it imported
PROBE = """
import io, json, sys
from pipelines import cli
watched, stdin, argv = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
sys.stdin = io.StringIO(stdin)
try:
    rc = cli.main(argv)
except SystemExit as exc:  # --help
    rc = exc.code
print(json.dumps({"rc": rc, "imported": sorted(m for m in watched if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("startup")
    warehouse.publish([Write("t", pl.DataFrame({"x": [1, 2, 3]}))], base / "w.sqlite", lake_root=base / "lake")
    return base / "w.sqlite"


def imported(*argv: str, stdin: str = "") -> list[str]:
    """The heavy modules (and duckdb) a `mayorista ARGV` run imported, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([*HEAVY, "duckdb"]), stdin, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["rc"] == 0, done.stderr[-3000:]
    return result["imported"]


def test_help_imports_nothing_heavy():
    assert imported("--help") == []
    assert imported("sql", "--help") == []


def test_sql_as_csv_imports_duckdb_only(catalog_file):
    assert imported("sql", "--warehouse", str(catalog_file), "--csv", "SELECT count(*) FROM t") == ["duckdb"]


def test_a_session_starts_with_duckdb_only(catalog_file):
    assert imported("sql", "--warehouse", str(catalog_file)) == ["duckdb"]  # nothing on its input
    assert imported("sql", "--warehouse", str(catalog_file), "--csv", stdin="SELECT sum(x) FROM t;\n") == ["duckdb"]


def test_the_table_view_adds_polars_and_the_arrow_it_comes_through(catalog_file):
    table_view = imported("sql", "--warehouse", str(catalog_file), "SELECT count(*) FROM t")
    assert table_view == ["duckdb", "numpy", "polars", "pyarrow"]  # DuckDB's .pl() goes through Arrow


def _fresh(directory: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(directory),
        }
    )


def test_extensions_are_installed_once_then_only_loaded(tmp_path):
    con = _fresh(tmp_path)
    catalog._install(con, "ducklake")
    catalog._install(con, "sqlite")
    installed = sorted(tmp_path.rglob("*.duckdb_extension"))
    assert [f.name for f in installed] == ["ducklake.duckdb_extension", "sqlite_scanner.duckdb_extension"]
    assert (
        con.sql(
            "SELECT count(*) FROM duckdb_extensions() WHERE loaded AND extension_name IN ('ducklake', 'sqlite_scanner')"
        ).fetchone()[0]
        == 2
    )
    stamps = [f.stat().st_mtime_ns for f in installed]
    again = _fresh(tmp_path)
    catalog._install(again, "ducklake")
    catalog._install(again, "sqlite")
    assert [f.stat().st_mtime_ns for f in installed] == stamps  # loaded, not installed again
    assert not list(tmp_path.rglob("*postgres*"))  # loaded only when needed: no PostgreSQL catalog here


def test_the_warehouse_loads_its_extensions_from_the_environment(tmp_path):
    """Not checked again on each LOAD (0.16 s a connection): the files are the wheels' own, copied into
    the environment uv installed and checked; nothing in the home directory is read."""
    settings = catalog.duckdb_config()
    folder = Path(sys.prefix) / "share" / "mayorista" / "duckdb-extensions"
    assert settings["extension_directory"] == str(folder) and settings["allow_unsigned_extensions"] is True
    con = catalog.connect(tmp_path / "wh.sqlite", lake_root=tmp_path / "lake")
    paths = dict(
        con.sql(
            "SELECT extension_name, install_path FROM duckdb_extensions() WHERE loaded AND install_path <> ''"
        ).fetchall()
    )
    assert {"ducklake", "sqlite_scanner"} <= set(paths), paths
    # DuckDB's own built-in modules (core_functions...) report no file of their own
    assert all(Path(paths[name]).is_relative_to(folder) for name in ("ducklake", "sqlite_scanner")), paths
    con.close()


def test_a_damaged_installed_extension_is_replaced_from_the_wheel(tmp_path):
    platform = duckdb.sql("PRAGMA platform").fetchone()[0]
    damaged = tmp_path / f"v{duckdb.__version__}" / platform / "ducklake.duckdb_extension"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not an extension" * 64)
    con = _fresh(tmp_path)
    catalog._install(con, "ducklake")
    assert damaged.stat().st_size == catalog._wheel_file("ducklake").stat().st_size
    assert con.sql("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'ducklake'").fetchone()[0]


RUN_PROBE = """
import json, sys, threading
from pipelines import run
before = "pyarrow.lib" in sys.modules
with run.start("ncc11", "2026-03", warehouse=sys.argv[1], lake_root=sys.argv[2], warm=False):
    print(json.dumps({"before": before, "inside": "pyarrow.lib" in sys.modules, "threads": threading.active_count()}))
"""


def test_a_run_imports_pyarrow_before_any_thread_of_its_own(tmp_path):
    """pyarrow's import, if a run's background thread (GX's import, a Parquet write) did it, could make
    `str` a `collections.abc.Mapping` for the whole process (pipelines/run.py, `start`): a run imports
    it first, in its own thread, while no other thread runs."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_PROBE, str(tmp_path / "w.sqlite"), str(tmp_path / "lake")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"before": False, "inside": True, "threads": 1}
