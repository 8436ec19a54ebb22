"""The Parquet lake: `<lake>/<dataset>/<key>=<value>/...`, on a local disk or on object storage.

The root is a path or a URI (`/srv/lake`, `file:///srv/lake`, `s3://bucket/lake`, `gs://...`,
`memory://...` in tests), held as a `UPath` (universal_pathlib over fsspec, the library Airflow's
ObjectStoragePath wraps), so every module addresses the lake the same way whatever is underneath.

A run stages everything under `<lake>/_staging/<run>/` and only at the end swaps each partition into
place, so a re-run replaces a partition and readers never see a half-written file:
- on a local disk a file is written under a temporary name and renamed, and a partition directory is
  replaced by renaming (atomic on one filesystem);
- an object store has no rename, but a single PUT is atomic: each file is written once under its
  final key, and a swap copies the staged files over the partition's keys (each reader sees the old
  or the new object) and then deletes keys the new partition no longer has.
The warehouse transaction remains the one commit point analysts depend on (see docs/scale-out.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import fsspec
import polars as pl
from upath import UPath

from pipelines.errors import MayoristaError

Location = UPath  # a local PosixUPath is also a pathlib.Path


def location(value: str | os.PathLike[str]) -> UPath:
    """A lake location from a path or URI; `file://` URIs become plain local paths."""
    if isinstance(value, UPath):
        return value
    text = os.fspath(value)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # one letter: a Windows drive
        return UPath(unquote(parsed.path) if parsed.scheme == "file" else text)
    try:
        fsspec.get_filesystem_class(parsed.scheme)
    except (ImportError, ValueError) as exc:
        raise MayoristaError(f"lake location {text!r}: no filesystem for {parsed.scheme}:// here ({exc})") from exc
    return UPath(text)


def is_local(path: UPath | Path) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def partition_dir(root: UPath, dataset: str, **keys: str) -> UPath:
    path = location(root) / dataset
    for key, value in keys.items():
        path = path / f"{key}={value}"
    return path


def staging_dir(root: UPath, pipeline: str, period: str, run_id: str) -> UPath:
    path = location(root) / "_staging" / pipeline / period / safe_name(run_id)
    if is_local(path):  # object stores have no directories to create
        path.mkdir(parents=True, exist_ok=True)
    return path


def scratch_dir(staging: UPath) -> Path:
    """Working files of a run that are never published (read back by polars/DuckDB many times):
    next to the staging area on a local lake, in the machine's temp folder otherwise."""
    if is_local(staging):
        path = Path(staging) / "_scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix=f"mayorista-{staging.name}-"))


def safe_name(text: str) -> str:
    """A run id made safe as a file or folder name (Airflow run ids contain ":" and "+")."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: UPath, **options: object) -> UPath:
    """Write one Parquet file atomically."""
    options = {"compression": "zstd", **options}
    if not is_local(path):
        data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        with path.open("wb") as fh:  # one PUT
            data.write_parquet(fh, **options)  # type: ignore[arg-type]
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(tmp, **options)  # type: ignore[arg-type]
    else:
        frame.write_parquet(tmp, **options)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def write_text(text: str, path: UPath) -> UPath:
    """Write a small text file (manifest, report) atomically."""
    if not is_local(path):
        path.write_text(text, encoding="utf-8")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_parquet(path: UPath) -> pl.DataFrame:
    if is_local(path):
        return pl.read_parquet(path)
    with path.open("rb") as fh:
        return pl.read_parquet(fh)


def files(directory: UPath) -> list[UPath]:
    """Every file under `directory` (none if it does not exist), sorted."""
    if is_local(directory):
        return sorted(p for p in Path(directory).rglob("*") if p.is_file()) if directory.exists() else []  # type: ignore[misc]
    found = directory.fs.find(directory.path)
    return sorted(directory / Path(name).relative_to(directory.path).as_posix() for name in found)


def swap_in(staged: UPath, target: UPath) -> None:
    """Put the staged directory where `target` is, replacing it whole."""
    if is_local(staged) and is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    new = {f.relative_to(staged).as_posix(): f for f in files(staged)}
    for name, source in new.items():
        target.fs.copy(source.path, (target / name).path)
    for stale in files(target):
        if stale.relative_to(target).as_posix() not in new:
            stale.fs.rm(stale.path)
    discard(staged)


def discard(path: UPath | Path) -> None:
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)
