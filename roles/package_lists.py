"""Provisioning step shared by the roles that install packages: refresh apt's lists.

Every role refreshes the lists only when a package it needs is missing, so a
re-run changes nothing. The refresh itself is bounded (see
``pgfortress/plan/package_lists.py``): a stalled mirror fails the deploy with
a clear message instead of holding it.
"""

from __future__ import annotations

from collections.abc import Generator

from pyinfra.api.command import StringCommand
from pyinfra.api.operation import operation

from pgfortress.plan.package_lists import refresh_script

__all__ = ["refresh_package_lists"]


@operation(is_idempotent=False)
def refresh_package_lists() -> Generator[StringCommand, None, None]:
    """``apt-get update``, each attempt time-limited, tried again on failure."""
    yield StringCommand(refresh_script())
