"""The audit's error, in pgfortress's exception tree."""

from __future__ import annotations

from ..errors import PgFortressError

__all__ = ["AuditError"]


class AuditError(PgFortressError):
    """The audit could not run: a bad inventory, check or control id."""
