"""pgfortress: harden PostgreSQL hosts, verified on real disposable hosts."""

from __future__ import annotations

from .errors import LabError, PgFortressError, SecretStoreError, SpecError, TLSError

__version__ = "0.1.0"

__all__ = [
    "LabError",
    "PgFortressError",
    "SecretStoreError",
    "SpecError",
    "TLSError",
    "__version__",
]
