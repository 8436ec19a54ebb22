"""Errors a user can act on. The CLI prints their message and exits non-zero; nothing is published."""

from __future__ import annotations


class MayoristaError(Exception):
    """Base class: the message is meant for the person running the job."""


class InputError(MayoristaError):
    """An input file is missing, unreadable, or has a missing column or an unparsable value."""


class ValidationFailed(MayoristaError):
    """An error-level data-quality check failed; the message is the readable report."""
