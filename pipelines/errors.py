"""Errors a user can act on. The CLI prints their message and exits 2; nothing is published.

Two families, never confused: the input is wrong (`InputError`, `ValidationFailed`: fix the files),
or the machine is (`EnvironmentFault`: disk full, read-only, locked; the input may be fine)."""

from __future__ import annotations

import errno


class MayoristaError(Exception):
    """Base class: the message is meant for the person running the job."""


class InputError(MayoristaError):
    """An input file is missing, unreadable, or has a missing column or an unparsable value."""


class ValidationFailed(MayoristaError):
    """An error-level data-quality check failed; the message is the readable report."""


class EnvironmentFault(MayoristaError):
    """The machine failed (disk full, read-only storage, a lock held elsewhere, permissions), not the
    input: the message says what, where, and what to do. Nothing was published."""


# errnos that mean "the storage we write to", never "the file we read"
_ENV_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE}
_ENV_TEXT = (
    "no space left",
    "read-only file system",
    "disk quota",
    "permission denied",
    "could not set lock",
    "conflicting lock",
    "database is locked",
    "input/output error",
    "database or disk is full",
    "readonly database",
    "read-only database",
)


def environment_fault(exc: BaseException, where: object, doing: str) -> EnvironmentFault | None:
    """An EnvironmentFault describing `exc` if it is a failure of the machine, else None.

    Libraries (polars, DuckDB) often wrap the OS error in their own exception type, so the errno is
    looked for first and the OS's words second."""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code not in _ENV_ERRNOS and not any(words in text for words in _ENV_TEXT):
        return None
    if code == errno.ENOSPC or "no space left" in text or "quota" in text or "disk is full" in text:
        what, todo = "the disk is full", "free space there (or point it elsewhere) and run again"
    elif code == errno.EROFS or "read-only" in text or "readonly" in text:
        what, todo = "the storage is read-only", "make it writable (or point it elsewhere) and run again"
    elif "lock" in text:
        what, todo = "it is locked by another process", "wait for that process to finish (or stop it) and run again"
    elif code in (errno.EACCES, errno.EPERM) or "permission" in text:
        what, todo = "permission denied", "give this user write access there and run again"
    else:
        what, todo = f"the machine failed ({str(exc).splitlines()[0][:200]})", "check the storage and run again"
    return EnvironmentFault(f"could not {doing} at {where}: {what}. Nothing was published; {todo}.")
