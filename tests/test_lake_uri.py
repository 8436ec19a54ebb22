"""The lake on something that is not a local disk: fsspec's in-memory filesystem stands in for object
storage (no rename, no directories). The catalog stays a local SQLite file; DuckLake writes the data
files (and the jobs their reports) to a `memory://` URI. All three pipelines run on the sample data and
must publish the same warehouse rows as with a local lake, write nothing to a local folder named after
the scheme, and replace a partition's rows on a re-run."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from upath import UPath

from pipelines import config, warehouse
from pipelines.delivery.job import check_month
from pipelines.metering.job import ingest_month
from pipelines.ncc11 import job as ncc11
from pipelines.warehouse import registry

SAMPLE = config.ROOT / "data" / "sample"
TABLES = {
    "ncc11_energy": "SELECT * EXCLUDE (run_id) FROM ncc11_energy ORDER BY ALL",
    "ncc11_power": "SELECT * EXCLUDE (run_id) FROM ncc11_power ORDER BY ALL",
    "meter_hourly": "SELECT * FROM meter_hourly ORDER BY ALL",
    "vee_findings": "SELECT * FROM vee_findings ORDER BY ALL",
    "delivery_compliance": "SELECT * EXCLUDE (run_id) FROM delivery_compliance ORDER BY ALL",
    "estimated_hourly": "SELECT * EXCLUDE (run_id) FROM estimated_hourly ORDER BY ALL",
}


def _run_all(root: str | Path, catalog: Path) -> None:
    ncc11.run("2026-05", SAMPLE / "ncc11" / "2026-05", warehouse=catalog, lake_root=root)
    ingest_month("2026-04", SAMPLE / "smec", warehouse=catalog, lake_root=root)
    check_month("2026-04", SAMPLE / "smec", warehouse=catalog, lake_root=root)


def _tables(catalog: Path) -> dict[str, pl.DataFrame]:
    con = warehouse.connect(catalog, read_only=True)
    try:
        columns = {t: {r[0] for r in con.sql(f"DESCRIBE {t}").fetchall()} for t in TABLES}
        # run_id differs between runs by design; only drop it where the table has one
        return {
            t: con.sql(sql if "run_id" in columns[t] else sql.replace(" EXCLUDE (run_id)", "")).pl()
            for t, sql in TABLES.items()
        }
    finally:
        con.close()


def _names(root: UPath) -> list[str]:
    """Every file under the root, relative to it, DuckLake's random file names replaced by a marker."""
    names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return sorted(re.sub(r"ducklake-[0-9a-f-]+\.parquet$", "ducklake-*.parquet", n) for n in names)


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("lakes")
    _run_all(base / "lake", base / "local.sqlite")
    return base, base / "lake"


@pytest.fixture(scope="module")
def both_lakes(local_lake: tuple[Path, Path]) -> tuple[Path, Path, UPath, Path]:
    base, local_root = local_lake
    memory_root = UPath(f"memory://mayorista-{uuid.uuid4().hex}/lake")
    _run_all(str(memory_root), base / "memory.sqlite")
    return base, local_root, memory_root, Path.cwd()


def test_object_storage_lake_publishes_the_same_rows(both_lakes):
    base, _, _, _ = both_lakes
    local, remote = _tables(base / "local.sqlite"), _tables(base / "memory.sqlite")
    for table in TABLES:
        assert remote[table].height > 0, table
        # parallel sums may differ in the last bits between any two runs, whatever the lake
        assert_frame_equal(remote[table], local[table], check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_object_storage_lake_holds_the_same_files(both_lakes):
    base, local_root, memory_root, cwd = both_lakes
    remote, local = _names(memory_root), _names(UPath(local_root))
    assert remote == local
    assert "main/ncc11_energy/quarter=2026-05/ducklake-*.parquet" in remote
    assert "main/meter_readings/month=2026-04/ducklake-*.parquet" in remote
    assert "reports/delivery/month=2026-04/INDPAC.html" in remote
    # the catalog is local and remembers where its data lives
    data_path = warehouse.query(
        "SELECT value FROM ducklake_options('wh') WHERE option_name = 'data_path'", base / "memory.sqlite"
    )["value"][0]
    assert data_path.rstrip("/") == str(memory_root).rstrip("/")
    # nothing went to a local folder named after the scheme
    for folder in (cwd, base, config.ROOT):
        assert not (folder / "memory:").exists()
        assert not list(folder.glob("memory:*"))


def test_rerun_on_object_storage_replaces_the_partition(both_lakes):
    base, _, memory_root, _ = both_lakes
    catalog = base / "memory.sqlite"
    sql = "SELECT * EXCLUDE (run_id) FROM ncc11_energy WHERE quarter = '2026-05' ORDER BY ALL"
    drop = lambda f: f.drop("run_id", strict=False)  # noqa: E731
    before = drop(warehouse.query(sql.replace(" EXCLUDE (run_id)", ""), catalog))
    ncc11.run("2026-05", SAMPLE / "ncc11" / "2026-05", warehouse=catalog, lake_root=str(memory_root))
    after = drop(warehouse.query(sql.replace(" EXCLUDE (run_id)", ""), catalog))
    assert after.height == before.height == 12
    assert_frame_equal(after, before, check_exact=False, rel_tol=1e-12)
    # the new rows are in new files on the object store
    files = warehouse.query("SELECT data_file FROM ducklake_list_files('wh', 'ncc11_energy')", catalog)["data_file"]
    assert files.len() >= 1 and all(f.startswith("memory://") for f in files)
    assert all(UPath(f).exists() for f in files)


def test_published_tables_are_those_the_registry_declares(local_lake):
    """Every table the three pipelines published is declared once in the registry, with the columns,
    types and partition it really has (the registry drives the writes, so a drift shows here)."""
    base, _ = local_lake
    with warehouse.open_reader(base / "local.sqlite") as src:
        published = src.tables()
        assert published <= set(registry.BY_NAME), published - set(registry.BY_NAME)
        for name in sorted(published):
            shape = src.frame("SELECT * FROM {t} LIMIT 0", t=name).schema
            assert list(shape.items()) == list(registry.table(name).columns.items()), name
        # the partition a table's files are laid out by: the `<column>=<value>` folders of its data files
        files = src.frame(
            "SELECT * FROM ("
            + " UNION ALL ".join(
                f"SELECT '{t}' AS t, data_file FROM ducklake_list_files('wh', '{t}')" for t in sorted(published)
            )
            + ")"
        )
    laid_out = {
        t: sorted({part.split("=", 1)[0] for f in group["data_file"] for part in f.split("/") if "=" in part})
        for (t,), group in files.group_by("t")
    }
    declared = {t: sorted(registry.table(t).partition) for t in laid_out}
    assert laid_out == declared
