"""A copy of a SQLite-catalog warehouse somewhere else, for tests that start from one published state."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path


def copy_warehouse(catalog: Path, lake: Path, to_catalog: Path, to_lake: Path) -> None:
    """Copy the catalog and the lake's data files (`main/`), and point the copy's data path at the new
    lake (DuckLake keeps file paths relative to it)."""
    to_catalog.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(catalog, to_catalog)
    shutil.copytree(lake / "main", to_lake / "main", dirs_exist_ok=True)
    con = sqlite3.connect(to_catalog)
    try:
        con.execute("UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path'", [str(to_lake.resolve()) + "/"])
        con.commit()
    finally:
        con.close()
