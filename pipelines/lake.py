"""The Parquet lake: `<lake>/<dataset>/<key>=<value>/...`.

A run stages everything under `<lake>/_staging/<run>/` and only at the end swaps each partition
directory into place, so readers never see a half-written partition and a re-run replaces it."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import polars as pl


def partition_dir(root: Path, dataset: str, **keys: str) -> Path:
    path = Path(root) / dataset
    for key, value in keys.items():
        path = path / f"{key}={value}"
    return path


def staging_dir(root: Path, pipeline: str, period: str, run_id: str) -> Path:
    path = Path(root) / "_staging" / pipeline / period / safe_name(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(text: str) -> str:
    """A run id made safe as a file or folder name (Airflow run ids contain ":" and "+")."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> Path:
    """Write a file atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(tmp, compression="zstd")
    else:
        frame.write_parquet(tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def swap_in(staged: Path, target: Path) -> None:
    """Put the staged directory where `target` is, replacing it whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
