"""What went wrong with the warehouse: a failure of the machine (a full or read-only disk under the
catalog or the lake), the PostgreSQL catalog's server gone, or another writer first (a conflict, retried
whole by `writes.publish`). Each becomes one sentence for the user, never the error's own text (it can
quote the connection string, password included)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pipelines import config, lake, objectstore
from pipelines.errors import EnvironmentFault, environment_fault
from pipelines.warehouse.catalog import Where, describe, is_postgres, settings

_FULL_BELOW_BYTES = 1 << 20  # a disk with less free space than this is taken as full


def _is_conflict(exc: BaseException) -> bool:
    """Another writer got there first (a conflicting commit, a table it just created, the SQLite
    catalog busy past its timeout): the whole transaction can simply be tried again. Other failed
    commits (a full or read-only disk under the catalog) are not conflicts, whatever their type."""
    text = str(exc).lower()
    return "conflict" in text or "already exists" in text or "database is locked" in text


def _storage_fault(s: config.Settings, what: str) -> EnvironmentFault | None:
    """When an error does not say what failed (a failed COMMIT of the SQLite catalog can surface only as
    'cannot rollback - no transaction is active'), look at the storage the warehouse writes to."""
    target = s.warehouse
    places = [] if is_postgres(target) else [Path(target).resolve().parent]
    root = s.lake_root
    if lake.is_local(root):
        places.append(Path(root))
    for place in places:
        while not place.exists() and place != place.parent:
            place = place.parent
        try:
            stat = os.statvfs(place)
        except OSError:
            continue
        if stat.f_flag & os.ST_RDONLY:
            return environment_fault(OSError(errno.EROFS, "Read-only file system"), place, what)
        if stat.f_bavail * stat.f_frsize < _FULL_BELOW_BYTES:
            return environment_fault(OSError(errno.ENOSPC, "No space left on device"), place, what)
    return None


# What the PostgreSQL client says when the catalog's server goes away (stopped, crashed, restarting,
# unreachable), as DuckDB's postgres extension passes it on inside Binder, IO, Transaction or plain
# errors (whatever the statement was doing), with the reason each stands for in our message. Never
# the error's own text: it quotes the SQL and sometimes the whole connection string, password included.
_CATALOG_LOST = (
    ("server closed the connection", "the server closed the connection unexpectedly"),
    ("terminating connection", "the server ended the connection"),
    ("the database system is shutting down", "the server is shutting down"),
    ("the database system is starting up", "the server is starting up"),
    ("the database system is in recovery mode", "the server is recovering from a crash"),
    ("no connection to the server", "the connection to the server is gone"),
    ("ssl connection has been closed", "the server closed the connection unexpectedly"),
    ("connection refused", "connection refused (is the server running?)"),
    ("could not connect to server", "could not connect to the server"),
    ("unable to connect to postgres", "could not connect to the server"),
    ("connection timed out", "the connection timed out"),
    ("could not translate host name", "the server's host name does not resolve"),
)


def catalog_lost(exc: BaseException, where: Where = None) -> EnvironmentFault | None:
    """An EnvironmentFault in one sentence when `exc` says the PostgreSQL catalog's server went away
    in the middle of a read or a publish, else None. The transaction died with the connection, so
    nothing was published, except when the connection broke during the COMMIT itself: PostgreSQL may
    or may not have committed, and the sentence says so."""
    target = settings(where).warehouse
    if not is_postgres(target):
        return None
    text = str(exc).lower()
    reason = next((why for words, why in _CATALOG_LOST if words in text), None)
    if reason is None:
        return None
    commit_unknown = "failed to commit" in text or 'query "commit"' in text
    if commit_unknown:
        outcome = (
            "the connection broke during the commit, so the run may or may not have been published: "
            "`mayorista history` shows which once the server is back"
        )
    else:
        outcome = "nothing was published"
    fault = EnvironmentFault(
        f"lost the connection to the warehouse catalog {describe(target)}: {reason}; {outcome}. "
        "Check the PostgreSQL server and run again."
    )
    fault.commit_unknown = commit_unknown  # publish() then keeps the data files a committed snapshot may use
    return fault


def fault_of(exc: BaseException, where: Where, what: str) -> BaseException:
    """The error to report for a failed warehouse operation: a failure of the machine as an
    EnvironmentFault (from the error's own words, else from the state of the storage), else `exc`."""
    s = settings(where)
    s3 = objectstore.fault(exc, describe(s), what) if objectstore.is_s3(s.lake) else None
    if s3 is not None:  # the lake's S3 endpoint: unreachable, refusing the credentials, no bucket
        return s3
    lost = catalog_lost(exc, s)
    if lost is not None:
        return lost
    by_words = environment_fault(exc, describe(s), what)
    if by_words is None or "disk is full" in str(by_words) or "read-only" in str(by_words):
        # the storage names the place that is full or read-only: the catalog's disk or the lake's
        return _storage_fault(s, what) or by_words or exc
    return by_words
