"""Where things live. Every location can be overridden by an environment variable so the same code
runs in the demo, the tests, and under a scheduler; defaults keep everything inside the repository."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from upath import UPath

ROOT = Path(__file__).resolve().parent.parent


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else default


def data_dir() -> Path:
    return _path("MAYORISTA_DATA_DIR", ROOT / "data")


def warehouse(override: str | os.PathLike[str] | None = None) -> str:
    """The warehouse catalog: a SQLite file path (embedded default) or a PostgreSQL URI (production).
    `override` (a command's --warehouse) wins over MAYORISTA_WAREHOUSE. A run resolves it once
    (`Settings.resolve`) and passes the settings down."""
    return Settings.resolve(warehouse=override).warehouse


LOCK_WAIT_S = 120.0  # how long a command waits for a catalog another process holds


def lock_wait_s() -> float:
    """Seconds a command waits, in all, for a catalog another process holds: MAYORISTA_LOCK_WAIT_S
    (default 120). Checked when a command starts, so a typo stops it before any work."""
    from pipelines.errors import MayoristaError

    text = os.environ.get("MAYORISTA_LOCK_WAIT_S", "").strip()
    if not text:
        return LOCK_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 <= value < float("inf")):
        raise MayoristaError(f"MAYORISTA_LOCK_WAIT_S must be a number of seconds, 0 or more (e.g. 120), got {text!r}")
    return value


def scratch_root() -> Path:
    """Local working files of running jobs (never published); a run removes what dead runs left here."""
    return _path("MAYORISTA_SCRATCH", Path(tempfile.gettempdir()) / "mayorista-scratch")


def lake_root(override: str | os.PathLike[str] | None = None) -> UPath:
    """Root of the lake (the warehouse's Parquet data files, and reports under reports/): a path or a
    URI (`file://`, or `s3://` / `gs://` / `abfs://` with that fsspec filesystem installed).
    `override` (a command's --lake) wins over MAYORISTA_LAKE. A run resolves it once
    (`Settings.resolve`) and passes the settings down."""
    return Settings.resolve(lake=override).lake_root


def landing_root() -> Path | str:
    """Where scheduled runs look for their inputs: <landing>/<domain>/<period>/. A folder, or an s3://
    URL (kept as text: pipelines/landing_zone.py reads it)."""
    value = os.environ.get("MAYORISTA_LANDING")
    return _landing(value) if value else data_dir() / "sample"


def _landing(value: str | os.PathLike[str]) -> Path | str:
    text = os.fspath(value)
    return text.rstrip("/") if text.startswith(("s3://", "s3a://")) else Path(text)


def config_dir() -> Path:
    """Calendars and thresholds kept as data (band calendar, VEE thresholds, non-working days)."""
    return _path("MAYORISTA_CONFIG", ROOT / "config")


def expectations_dir() -> Path:
    return ROOT / "expectations"


def sql_dir() -> Path:
    return ROOT / "sql"


@dataclass(frozen=True)
class Settings:
    """Every location a run needs, resolved once (command-line overrides, then environment, then the
    repository defaults) and passed down: nothing below re-reads the environment for these. The
    warehouse package takes a Settings wherever it takes a warehouse (`warehouse.catalog.settings`)."""

    warehouse: str  # the catalog: a SQLite file path or a PostgreSQL URI
    lake: str | os.PathLike[str]  # the lake root as given (a path or URI), see `lake_root`
    landing: Path | str  # a folder, or an s3:// URL
    config: Path
    lake_given: bool = False  # the lake came from --lake or MAYORISTA_LAKE (not the default)

    @classmethod
    def resolve(
        cls,
        *,
        warehouse: str | os.PathLike[str] | None = None,
        lake: str | os.PathLike[str] | None = None,
        landing: Path | str | None = None,
    ) -> Settings:
        # the one place MAYORISTA_WAREHOUSE and MAYORISTA_LAKE are read
        lake_text = lake or os.environ.get("MAYORISTA_LAKE")
        return cls(
            warehouse=str(warehouse or os.environ.get("MAYORISTA_WAREHOUSE") or data_dir() / "warehouse.sqlite"),
            lake=lake_text or data_dir() / "lake",
            landing=_landing(landing or landing_root()),
            config=config_dir(),
            lake_given=bool(lake_text),
        )

    @property
    def lake_root(self) -> UPath:
        """The lake root as a location (`lake.location`: a local path or a fsspec URI)."""
        from pipelines import lake

        return lake.location(self.lake)

    def with_lake(self, lake: str | os.PathLike[str]) -> Settings:
        """The same settings with another lake root (a command's --lake)."""
        return replace(self, lake=lake, lake_given=True)

    def inputs(self, domain: str, period: str | None = None) -> Path | str:
        """The landing layout, in one place: <landing>/ncc11/<quarter>/ and <landing>/smec/ (meters and
        delivery read the same folder)."""
        parts = ["smec"]
        if domain == "ncc11":
            if period is None:
                raise ValueError("ncc11 inputs are per quarter")
            parts = ["ncc11", str(period)]
        if isinstance(self.landing, str):  # s3://bucket/landing: joined as text
            return "/".join([self.landing, *parts])
        return self.landing.joinpath(*parts)
