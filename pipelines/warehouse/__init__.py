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

from pipelines.warehouse import registry
from pipelines.warehouse.catalog import (
    ALIAS,
    CatalogLocked,
    NoWarehouse,
    Where,
    attach,
    connect,
    describe,
    exists,
    identifier,
    is_catalog_file,
    is_postgres,
    literal,
    lock_budget,
    settings,
    warm,
)
from pipelines.warehouse.faults import catalog_lost, fault_of
from pipelines.warehouse.reader import (
    Reader,
    current_snapshot,
    data_path,
    open_reader,
    query,
    reading,
    table_names,
    tables,
)
from pipelines.warehouse.writes import Rows, Write, publish, transaction

__all__ = [
    "ALIAS",
    "CatalogLocked",
    "NoWarehouse",
    "Reader",
    "Rows",
    "Where",
    "Write",
    "attach",
    "catalog_lost",
    "connect",
    "current_snapshot",
    "data_path",
    "describe",
    "exists",
    "fault_of",
    "fault_of",
    "identifier",
    "is_catalog_file",
    "is_postgres",
    "literal",
    "lock_budget",
    "open_reader",
    "publish",
    "query",
    "reading",
    "registry",
    "settings",
    "table_names",
    "tables",
    "transaction",
    "warm",
]
