"""The warehouse: a DuckLake (a SQL catalog plus Parquet data files under the lake root).

- The catalog is a SQLite file by default (`data/warehouse.sqlite`, embedded) or a PostgreSQL database
  (`postgresql://user:pass@host:port/db`, the production profile). It remembers where its data files
  live, so a reader needs only the catalog.
- Writers and readers work at once: an analyst's open session never blocks a publish, and sees the new
  rows on its next statement. Every commit is a snapshot; any table can be read as of one
  (`FROM t AT (VERSION => n)`), which is how a published report is reproduced later.
- A publication is ONE transaction over all of a run's tables (delete the period's rows, insert the
  new ones), so a failed or killed run leaves the previous snapshot as it was.

The extensions come from Python wheels (duckdb-extension-ducklake, -sqlite, -postgres) and are
installed from those files: nothing is downloaded at run time (`LOAD ducklake` alone would try).

The package is the storage boundary: domain code reads through a `Reader` (`open_reader`) and writes
through `publish` with the `Write`s the registry builds; only this package writes DuckLake SQL or
names the attached catalog (`ALIAS`).

    catalog    settings, extensions, attach/connect, waiting for a locked catalog, creating one
    faults     a failure of the machine or of the catalog's server, in one sentence; conflicts
    reader     Reader: one read-only connection pinned to one snapshot; query, table_names
    writes     Write, publish (one transaction), transaction, a publish's commit bookkeeping
    registry   every published table declared once: columns, partition, pipeline, asset
    upkeep     DuckLake's maintenance calls (pipelines.maintenance decides what to keep)"""

from __future__ import annotations

import importlib
from typing import Any

# Each name and the module that defines it, imported on first use (PEP 562): `mayorista sql` needs
# the catalog and the reader's few functions, not the writes' and the registry's polars (issue #25).
_WHERE = {
    "catalog": (
        "ALIAS",
        "CatalogLocked",
        "NoWarehouse",
        "Where",
        "attach",
        "connect",
        "data_path",
        "describe",
        "duckdb_config",
        "exists",
        "identifier",
        "is_catalog_file",
        "is_postgres",
        "literal",
        "lock_budget",
        "settings",
        "warm",
    ),
    "faults": ("catalog_lost", "fault_of"),
    "reader": ("Reader", "current_snapshot", "open_reader", "query", "reading", "table_names", "tables"),
    "writes": ("Rows", "Write", "publish", "transaction"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = sorted([*_MODULE_OF, "registry"])


def __getattr__(name: str) -> Any:
    """`warehouse.connect`, `from pipelines.warehouse import Write`, `warehouse.registry`: the
    defining module is imported then (once), as an eager import would have done at start-up."""
    module = _MODULE_OF.get(name, name if name in ("registry", "upkeep", *_WHERE) else None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    imported = importlib.import_module(f"{__name__}.{module}")
    value = imported if module == name else getattr(imported, name)
    globals()[name] = value  # the next use is a plain attribute
    return value
