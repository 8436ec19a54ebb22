"""The lake on something that is not a local disk: fsspec's in-memory filesystem stands in for object
storage (no rename, no directories). All three pipelines run on the sample data with the lake at a
`memory://` URI and must publish the same warehouse rows as with a local lake, leave nothing staged,
and replace partitions on a re-run."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from upath import UPath

from pipelines import config, lake
from pipelines.delivery.job import check_month
from pipelines.metering.job import ingest_month
from pipelines.ncc11 import job as ncc11

SAMPLE = config.ROOT / "data" / "sample"
TABLES = {
    "ncc11_energy": "SELECT * EXCLUDE (run_id) FROM ncc11_energy ORDER BY ALL",
    "ncc11_power": "SELECT * EXCLUDE (run_id) FROM ncc11_power ORDER BY ALL",
    "meter_hourly": "SELECT * FROM meter_hourly ORDER BY ALL",
    "vee_findings": "SELECT * FROM vee_findings ORDER BY ALL",
    "delivery_compliance": "SELECT * EXCLUDE (run_id) FROM delivery_compliance ORDER BY ALL",
    "estimated_hourly": "SELECT * EXCLUDE (run_id) FROM estimated_hourly ORDER BY ALL",
}


def _run_all(root: str | Path, warehouse: Path) -> None:
    ncc11.run("2026-05", SAMPLE / "ncc11" / "2026-05", warehouse=warehouse, lake_root=root)
    ingest_month("2026-04", SAMPLE / "smec", warehouse=warehouse, lake_root=root)
    check_month("2026-04", SAMPLE / "smec", warehouse=warehouse, lake_root=root)


def _tables(warehouse: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = {t: {r[0] for r in con.sql(f"DESCRIBE {t}").fetchall()} for t in TABLES}
        # run_id differs between runs by design; only drop it where the table has one
        return {t: con.sql(sql if "run_id" in columns[t] else sql.replace(" EXCLUDE (run_id)", "")).pl()
                for t, sql in TABLES.items()}
    finally:
        con.close()


def _names(root: UPath) -> list[str]:
    return [f.relative_to(root).as_posix() for f in lake.files(root)]


@pytest.fixture(scope="module")
def both_lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, UPath, Path]:
    base = tmp_path_factory.mktemp("lakes")
    local_root, memory_root = base / "lake", UPath(f"memory://mayorista-{uuid.uuid4().hex}/lake")
    _run_all(local_root, base / "local.duckdb")
    _run_all(str(memory_root), base / "memory.duckdb")
    return base, local_root, memory_root, Path.cwd()


def test_object_storage_lake_publishes_the_same_rows(both_lakes):
    base, _, _, _ = both_lakes
    local, remote = _tables(base / "local.duckdb"), _tables(base / "memory.duckdb")
    for table in TABLES:
        assert remote[table].height > 0, table
        # parallel sums may differ in the last bits between any two runs, whatever the lake
        assert_frame_equal(remote[table], local[table], check_exact=False, rel_tol=1e-12, abs_tol=1e-9)


def test_object_storage_lake_holds_the_same_files_and_nothing_staged(both_lakes):
    _, local_root, memory_root, cwd = both_lakes
    remote = _names(memory_root)
    local = [f.relative_to(local_root).as_posix() for f in lake.files(UPath(local_root))]
    assert not [n for n in remote if n.startswith("_staging")]
    # manifests are named by run id, which differs; every other file has the same name in both lakes
    assert [n for n in remote if not n.startswith("_manifests")] == [n for n in local if not n.startswith("_manifests")]
    assert "ncc11_energy/quarter=2026-05/data.parquet" in remote
    assert "reports/delivery/month=2026-04/INDPAC.md" in remote
    assert len([n for n in remote if n.startswith("_manifests/")]) == 3
    assert not (cwd / "memory:").exists()  # nothing went to a local folder named after the scheme


def test_rerun_on_object_storage_replaces_the_partition(both_lakes):
    base, _, memory_root, _ = both_lakes
    partition = lake.partition_dir(memory_root, "ncc11_energy", quarter="2026-05")
    (partition / "stale-from-an-old-layout.parquet").write_bytes(b"old")
    before = lake.read_parquet(partition / "data.parquet")
    ncc11.run("2026-05", SAMPLE / "ncc11" / "2026-05", warehouse=base / "memory.duckdb", lake_root=str(memory_root))
    assert [f.name for f in lake.files(partition)] == ["data.parquet"]
    assert_frame_equal(lake.read_parquet(partition / "data.parquet").drop("run_id", strict=False), before.drop("run_id", strict=False),
                       check_exact=False, rel_tol=1e-12)
    con = duckdb.connect(str(base / "memory.duckdb"), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM ncc11_energy WHERE quarter = '2026-05'").fetchall()[0][0] == before.height
    finally:
        con.close()
