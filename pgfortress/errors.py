"""Errors raised by pgfortress.

Every error the toolkit raises on purpose derives from one root, so callers can
catch the whole family at once::

    PgFortressError
    ├── SpecError (also ValueError)   bad inventory data or YAML spec
    ├── TLSError                      CA or certificate unusable (control machine)
    ├── SecretStoreError              local secret store unusable (modes, files)
    └── LabError                      the disposable lab could not be built or run

Messages name the thing that is wrong (file, host, field), the value that was
found, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "LabError",
    "PgFortressError",
    "SecretStoreError",
    "SpecError",
    "TLSError",
]


class PgFortressError(Exception):
    """Root of every error pgfortress raises on purpose."""


class SpecError(PgFortressError, ValueError):
    """Inventory data or a spec file is invalid; nothing was changed on any host."""


class TLSError(PgFortressError):
    """The certificate authority or a certificate cannot be used."""


class SecretStoreError(PgFortressError):
    """The local secret store is missing, unreadable or too open."""


class LabError(PgFortressError):
    """The lab could not be brought up, inspected or taken down."""
