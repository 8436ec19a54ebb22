"""The lake root: where the warehouse's Parquet data files live (DuckLake writes them, under
`<lake>/main/<table>/<partition>=<value>/`, URL-encoding the values) and where reports are written
(`<lake>/reports/...`).

The root is a path or a URI (`/srv/lake`, `file:///srv/lake`, `s3://bucket/lake`, `memory://...` in
tests), held as a `UPath` (universal_pathlib over fsspec, the library Airflow's ObjectStoragePath
wraps). Files are written atomically: under a temporary name and renamed on a local disk, in one PUT
on an object store."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlparse

from pipelines import objectstore
from pipelines.errors import MayoristaError, environment_fault

if TYPE_CHECKING:
    from upath import UPath


def location(value: str | os.PathLike[str]) -> UPath:
    """A lake location from a path or URI; `file://` URIs become plain local paths."""
    import fsspec  # these two take a fifth of a second: imported only where a location is built (issue #25)
    from upath import UPath

    if isinstance(value, UPath):
        return value
    local = local_path(value)
    if local is not None:
        return UPath(local)
    text = os.fspath(value)
    parsed = urlparse(text)
    try:
        fsspec.get_filesystem_class(parsed.scheme)
    except (ImportError, ValueError) as exc:
        raise MayoristaError(f"lake location {text!r}: no filesystem for {parsed.scheme}:// here ({exc})") from exc
    if objectstore.is_s3(text):  # the endpoint and credentials of the environment (pipelines/objectstore.py)
        return UPath(text, **objectstore.fs_options())
    return UPath(text)


def is_local(path: UPath | Path) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def local_path(value: str | os.PathLike[str]) -> Path | None:
    """The local path a lake location names (a path, a `file://` URI, a local UPath), None for any
    other URI (s3://, memory://...): what `location` decides first, without importing fsspec."""
    if hasattr(value, "protocol"):  # a UPath
        return Path(value) if is_local(value) else None
    text = os.fspath(value)
    parsed = urlparse(text)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # one letter: a Windows drive
        return Path(unquote(parsed.path) if parsed.scheme == "file" else text)
    return None


def safe_name(text: str) -> str:
    """A run id made safe as a file or folder name (Airflow run ids contain ":" and "+")."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def file_name(text: str) -> str:
    """A name from data (a participant) as one path component: percent-encoded, so distinct names
    give distinct files (`A/B` -> `A%2FB`, `A_B` stays) and none can climb out (`..` -> `%2E%2E`)."""
    encoded = quote(str(text), safe="-_")
    return encoded.replace(".", "%2E") if encoded else "%00"


def write_bytes(data: bytes, path: UPath) -> UPath:
    """Write one file atomically (a report); a failure of the disk is an EnvironmentFault."""
    try:
        if not is_local(path):
            try:
                with path.open("wb") as fh:  # one PUT
                    fh.write(data)
            except Exception as exc:  # botocore's errors are no OSError: the endpoint, credentials, bucket
                raise objectstore.fault(exc, path, "write") or exc
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise environment_fault(exc, path, "write") or exc
    return path


def write_text(text: str, path: UPath) -> UPath:
    return write_bytes(text.encode("utf-8"), path)
