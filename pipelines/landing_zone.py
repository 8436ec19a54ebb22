"""A landing zone on S3 (`--input s3://bucket/landing/smec`, `MAYORISTA_LANDING=s3://bucket/landing`):
what a run on any worker reads instead of a local folder.

- The small reference files at the top of an input folder (metering_points.csv, vpn_changes.csv, an
  NCC-11 quarter's tables) are copied whole into the run's scratch folder (`local_inputs`), and the
  run reads them there as it reads a local folder: they are read whole by every run anyway.
- The readings under `<input>/readings/` are listed (key, size, last-modified, ETag: one LIST request
  per 1,000 objects, nothing downloaded) and the ledger decides from the listing which objects are new
  or changed (pipelines/metering/ledger.py); only those are fetched (`RemoteReadings.local`), streamed
  into the run's scratch once per run, never again by a later run.

Object keys are data: an object's ledger name is its key under the input prefix (`readings/...`, as a
local file's is its path under the folder), kept as text in the ledger (bound as a value, never SQL
text); its local copy is named by a digest of the key plus its suffix (.csv/.parquet), so no key can
name a path outside the scratch folder. Keys with an empty, `.` or `..` segment are refused, never
fetched."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipelines import objectstore
from pipelines.errors import InputError

logger = logging.getLogger(__name__)

Location = Path | str  # a local folder, or an s3:// URL
SUFFIXES = (".csv", ".parquet")
# a reference file copied whole: a plain file name (the contract's names are plain), nothing else
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_remote(location: object) -> bool:
    return objectstore.is_s3(location)


def location(value: str | os.PathLike[str]) -> Location:
    """A landing location as given: an s3:// URL stays text (a Path would fold its `//`), else a Path."""
    text = os.fspath(value)
    return text.rstrip("/") if is_remote(text) else Path(text)


def join(base: Location, *parts: str) -> Location:
    """`base / parts` for a local folder or an URL."""
    if isinstance(base, str) and is_remote(base):
        return "/".join([base.rstrip("/"), *parts])
    return Path(base).joinpath(*parts)


def _bucket_path(url: str) -> str:
    """`bucket/prefix` as s3fs names it, from s3://bucket/prefix."""
    return url.split("://", 1)[1].strip("/")


def _fault(exc: BaseException, url: str, doing: str) -> BaseException:
    return objectstore.fault(exc, url, doing) or exc


def local_inputs(input_dir: Location, scratch: Path) -> Path:
    """The folder a run reads its reference files from: a local folder as it is; for an s3:// input,
    its top-level objects with plain names copied into `<scratch>/inputs/` (readings stay remote). An
    input prefix with no object at all is reported as a missing input directory."""
    if not is_remote(input_dir):
        return Path(input_dir)
    url = str(input_dir).rstrip("/")
    fs = objectstore.filesystem()
    target = scratch / "inputs"
    target.mkdir(parents=True, exist_ok=True)
    try:
        entries = fs.ls(_bucket_path(url), detail=True)
    except FileNotFoundError as exc:
        fault = objectstore.fault(exc, url, "list the input folder")
        if fault is not None:
            raise fault from None
        raise InputError(f"input directory {url} does not exist (no object under that prefix)") from None
    except Exception as exc:  # botocore's errors are no OSError: the endpoint, the credentials
        raise _fault(exc, url, "list the input folder") from None
    if not entries:
        raise InputError(f"input directory {url} does not exist (no object under that prefix)")
    fetched = 0
    for entry in entries:
        name = entry["name"].rsplit("/", 1)[-1]
        if entry.get("type") != "file" or not _PLAIN_NAME.fullmatch(name):
            continue  # readings/ and other folders; a name no contract file has is not copied
        try:
            fs.get_file(entry["name"], str(target / name))
        except Exception as exc:  # noqa: BLE001 - the endpoint's fault in one sentence
            raise _fault(exc, f"{url}/{name}", "download the input file") from None
        fetched += 1
    logger.info("copied %d input file(s) from %s into %s", fetched, url, target)
    return target


@dataclass(frozen=True)
class Listed:
    """One landed object as listed: its ledger name, size, last-modified (ns since the epoch, UTC) and ETag."""

    label: str  # readings/... : the key under the input prefix
    key: str  # bucket/key, as s3fs names it
    size: int
    mtime_ns: int
    etag: str


class RemoteReadings:
    """The readings under `<input>/readings/` on S3: listed once per plan, fetched on demand, each object
    at most once per run (a run that plans again after another run published reuses its copies)."""

    def __init__(self, input_url: str, scratch: Path) -> None:
        self.url = str(input_url).rstrip("/")
        self.folder = scratch / "landed"
        self.fetched = 0  # objects downloaded by this run
        self.fetched_bytes = 0
        self._fs = objectstore.filesystem()
        self._copies: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._listed: dict[str, Listed] = {}

    def __str__(self) -> str:
        return self.url

    def list(self) -> tuple[list[Listed], dict[str, str]]:
        """(the readings objects in key order; the refused keys, with why). Folder markers (keys ending
        in /), names outside .csv/.parquet and segments starting with . or _ are left out, as locally."""
        root = _bucket_path(self.url)
        try:
            found = self._fs.find(f"{root}/readings", detail=True)
        except FileNotFoundError as exc:
            fault = objectstore.fault(exc, self.url, "list the landed readings")
            if fault is not None:
                raise fault from None
            found = {}
        except Exception as exc:  # botocore's errors are no OSError
            raise _fault(exc, self.url, "list the landed readings") from None
        listed, refused = [], {}
        for key, info in found.items():
            if info.get("type") != "file":
                continue
            label = key[len(root) + 1 :]
            parts = label.split("/")
            if not label.endswith(SUFFIXES):
                continue
            if any(p in ("", ".", "..") for p in parts):  # no file has such a path: named, never fetched
                refused[label] = "an object key with an empty, '.' or '..' segment: not read"
                continue
            if any(p.startswith((".", "_")) for p in parts[1:]):  # hidden or temporary, as locally
                continue
            modified = info.get("LastModified")
            # whole microseconds (the ledger's precision), exactly: no float on the way
            mtime_ns = (modified - _EPOCH) // timedelta(microseconds=1) * 1000 if isinstance(modified, datetime) else 0
            listed.append(
                Listed(label, key, int(info.get("size") or 0), mtime_ns, str(info.get("ETag", "")).strip('"'))
            )
        listed.sort(key=lambda o: o.label)
        self._listed = {o.label: o for o in listed}
        return listed, dict(sorted(refused.items()))

    def local(self, label: str) -> Path:
        """The object's local copy, fetched (streamed) on first use; its modification time is the
        object's last-modified, so the ledger's checks read the same values from the copy."""
        with self._lock:
            if label in self._copies:
                return self._copies[label]
            obj = self._listed[label]
            suffix = ".parquet" if label.endswith(".parquet") else ".csv"
            path = self.folder / (hashlib.sha256(label.encode("utf-8")).hexdigest()[:32] + suffix)
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            try:
                self._fs.get_file(obj.key, str(tmp))
            except Exception as exc:  # noqa: BLE001 - the endpoint's fault in one sentence
                tmp.unlink(missing_ok=True)
                if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                    from pipelines.errors import environment_fault

                    raise environment_fault(exc, self.folder, "download a landed file") or _fault(
                        exc, f"{self.url}/{label}", "download the landed file"
                    ) from None
                raise _fault(exc, f"{self.url}/{label}", "download the landed file") from None
            os.utime(tmp, ns=(obj.mtime_ns, obj.mtime_ns))
            os.replace(tmp, path)
            self.fetched += 1
            self.fetched_bytes += obj.size
            self._copies[label] = path
            return path


class LazyFiles:
    """The landed files of a plan by index, fetched when first indexed (`files[i]`): the plan opens
    only the new and changed objects, so only those are downloaded."""

    def __init__(self, source: RemoteReadings, labels: list[str]) -> None:
        self._source, self._labels = source, labels

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, i: int) -> Path:
        return self._source.local(self._labels[i])

    def __iter__(self):  # noqa: ANN204
        return (self[i] for i in range(len(self)))
