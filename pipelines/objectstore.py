"""The S3 endpoint behind an `s3://` lake or landing zone: credentials, the two clients, and its faults.

Credentials and the endpoint come from the standard AWS variables, read here only, so the same code
runs against AWS S3, MinIO, or moto's server in the tests and `make cluster`:

    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional)
    AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (absent: AWS itself); http:// turns TLS off
    AWS_REGION, else AWS_DEFAULT_REGION (default us-east-1)

Two clients, one set of credentials (docs/scale-out.md, "Storage on S3", says why):
- DuckDB's httpfs extension for the warehouse's data files (DuckLake's DATA_PATH, reads of Parquet):
  a temporary secret in the connection (`duckdb_secret`). DuckLake refuses an s3:// data path without
  httpfs, and it was faster than fsspec's s3fs in bench/s3_bench.py;
- fsspec's s3fs (through universal_pathlib) for whole objects Python handles itself: the reports,
  the landing zone's listing and downloads (`filesystem`).

The values go into DuckDB as escaped literals (a secret takes no bound parameters) and are never
logged or put in a message: DuckDB shows a secret's values only as `redacted`."""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlparse

import duckdb

from pipelines.errors import EnvironmentFault

logger = logging.getLogger(__name__)

SECRET = "mayorista_s3"  # the DuckDB secret's name in every connection that reaches the endpoint
DEFAULT_REGION = "us-east-1"


def is_s3(location: object) -> bool:
    """Whether a lake or landing location (a path, a URI or a UPath) is on S3."""
    protocol = getattr(location, "protocol", None)
    if protocol is not None and not isinstance(location, str):
        return protocol in ("s3", "s3a") or (isinstance(protocol, tuple) and "s3" in protocol)
    return urlparse(os.fspath(location) if not isinstance(location, str) else location).scheme in ("s3", "s3a")


def endpoint_url() -> str | None:
    """The endpoint as configured (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL), None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def describe() -> str:
    """The endpoint as a person would name it in a message (no credentials: an URL never holds them here)."""
    url = endpoint_url()
    if not url:
        return f"AWS S3 ({region()})"
    parsed = urlparse(url)
    return parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[-1]).geturl()


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def duckdb_secret(con: duckdb.DuckDBPyConnection, install: Any) -> None:
    """Load httpfs (`install(con, "httpfs")`, the catalog's loader from the wheel) and give the connection
    the endpoint's credentials as a temporary secret (in memory, this connection only)."""
    install(con, "httpfs")
    options = {"REGION": region()}
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options.update(KEY_ID=key, SECRET=secret)
        if os.environ.get("AWS_SESSION_TOKEN"):
            options["SESSION_TOKEN"] = os.environ["AWS_SESSION_TOKEN"]
    url = endpoint_url()
    flags = ""
    if url:
        parsed = urlparse(url if "://" in url else f"https://{url}")
        options["ENDPOINT"] = parsed.netloc.rsplit("@", 1)[-1] + parsed.path.rstrip("/")
        # a custom endpoint (MinIO, moto, a gateway) serves buckets as paths, not as host names
        options["URL_STYLE"] = "path"
        flags = f", USE_SSL {'false' if parsed.scheme == 'http' else 'true'}"
    values = "".join(f", {name} {_literal(value)}" for name, value in options.items())
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET {SECRET} (TYPE s3{values}{flags})")


def fs_options() -> dict[str, Any]:
    """s3fs's options from the same variables (s3fs would find most of them itself; said once here)."""
    options: dict[str, Any] = {"client_kwargs": {"region_name": region()}}
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        options.update(key=os.environ["AWS_ACCESS_KEY_ID"], secret=os.environ["AWS_SECRET_ACCESS_KEY"])
        if os.environ.get("AWS_SESSION_TOKEN"):
            options["token"] = os.environ["AWS_SESSION_TOKEN"]
    if endpoint_url():
        options["client_kwargs"]["endpoint_url"] = endpoint_url()
    # a few quick retries, not botocore's default backoff: an unreachable endpoint is reported in seconds
    options["config_kwargs"] = {"retries": {"max_attempts": 2, "mode": "standard"}, "connect_timeout": 5}
    return options


def filesystem():  # noqa: ANN201 - s3fs.S3FileSystem, imported here only
    """An s3fs filesystem with the environment's credentials; its listings are never cached (a landing
    zone's new objects must show on the next listing, in a long-lived worker too)."""
    import s3fs

    return s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True, **fs_options())


# What the clients say when the endpoint, the credentials or the bucket are wrong (httpfs's and
# botocore's words, lower-cased), with the reason each stands for in our one sentence. Never the
# error's own text past its first line: it may quote a request's URL, never a secret.
_FAULTS = (
    ("nosuchbucket", "the bucket does not exist"),
    ("bucket does not exist", "the bucket does not exist"),
    ("specified bucket is not valid", "the bucket name is not valid"),
    ("invalidaccesskeyid", "the access key is not known to the endpoint (AWS_ACCESS_KEY_ID)"),
    ("signaturedoesnotmatch", "the secret key does not match (AWS_SECRET_ACCESS_KEY)"),
    ("invalidclienttokenid", "the credentials are not valid"),
    ("expiredtoken", "the session token has expired (AWS_SESSION_TOKEN)"),
    ("accessdenied", "access denied: the credentials may not use this bucket"),
    ("access denied", "access denied: the credentials may not use this bucket"),
    ("http 403", "access denied (HTTP 403): check the credentials"),
    ("http code 403", "access denied (HTTP 403): check the credentials"),
    ("could not connect to server", "the endpoint is unreachable"),
    ("could not connect to the endpoint", "the endpoint is unreachable"),
    ("connection refused", "the endpoint is unreachable (connection refused)"),
    ("connect timeout", "the endpoint did not answer in time"),
    ("read timeout", "the endpoint did not answer in time"),
    ("timed out", "the endpoint did not answer in time"),
    ("could not resolve host", "the endpoint's host name does not resolve"),
    ("name or service not known", "the endpoint's host name does not resolve"),
    ("nocredentialserror", "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
    ("unable to locate credentials", "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
)
# only errors that come from the S3 clients are looked at (a PostgreSQL catalog's "could not connect
# to server" is that catalog's fault: pipelines/warehouse/faults.py)
_MARKERS = (
    "s3://",
    "http ",
    "http error",
    "http code",
    "endpoint",
    "bucket",
    "botocore",
    "clienterror",
    "an error occurred (",  # botocore's ClientError: "An error occurred (Code) when calling the X operation"
    "credentials",
    "s3 ",
)


class EndpointFault(EnvironmentFault):
    """The S3 endpoint is unreachable, refuses the credentials, or has no such bucket."""


def fault(exc: BaseException, where: object, doing: str) -> EndpointFault | None:
    """An EnvironmentFault in one sentence when `exc` says the S3 endpoint is unreachable, refuses the
    credentials or has no such bucket; None for anything else (a missing object is not the machine's)."""
    chain = [exc, exc.__cause__, exc.__context__]
    text = " ".join(f"{type(e).__name__} {e}" for e in chain if e is not None).lower()
    if not any(marker in text for marker in _MARKERS) and "endpointconnectionerror" not in text:
        return None
    reason = next((why for words, why in _FAULTS if words in text), None)
    if reason is None:
        return None
    return EndpointFault(
        f"could not {doing}{f' at {where}' if where else ''} on the S3 endpoint {describe()}: {reason}. Nothing was published; "
        "check the endpoint and the AWS_* variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION), then run again."
    )
