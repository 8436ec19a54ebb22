"""Where things live. Every location can be overridden by an environment variable so the same code
runs in the demo, the tests, and under a scheduler; defaults keep everything inside the repository."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from pipelines.errors import MayoristaError

ROOT = Path(__file__).resolve().parent.parent


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else default


def data_dir() -> Path:
    return _path("MAYORISTA_DATA_DIR", ROOT / "data")


def warehouse_path() -> Path:
    """The DuckDB file analysts query."""
    return _path("MAYORISTA_WAREHOUSE", data_dir() / "warehouse.duckdb")


def lake_root() -> Path:
    """Root of the Parquet lake (inputs as ingested, outputs as published, manifests).

    Given as a path or a `file://` URI. Other schemes (s3://, gs://) are refused with a clear error
    rather than written to a local folder of that name: see docs/ for how the lake moves to object
    storage."""
    value = os.environ.get("MAYORISTA_LAKE")
    if not value:
        return data_dir() / "lake"
    parsed = urlparse(value)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else value)
    raise MayoristaError(f"MAYORISTA_LAKE={value!r}: only local paths and file:// URIs are supported by this deployment")


def landing_root() -> Path:
    """Where scheduled runs look for their inputs: <landing>/<domain>/<period>/."""
    return _path("MAYORISTA_LANDING", data_dir() / "sample")


def config_dir() -> Path:
    """Calendars and thresholds kept as data (band calendar, VEE thresholds, non-working days)."""
    return _path("MAYORISTA_CONFIG", ROOT / "config")


def expectations_dir() -> Path:
    return ROOT / "expectations"


def sql_dir() -> Path:
    return ROOT / "sql"
