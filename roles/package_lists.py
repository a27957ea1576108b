"""Provisioning step shared by the roles that install packages: refresh apt's lists.

Every role refreshes the lists only when a package it needs is missing, so a
re-run changes nothing. The refresh itself is bounded (see
``pgfortress/plan/package_lists.py``): a stalled mirror fails the deploy with
a clear message instead of holding it.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.api.exceptions import DeployError
from pyinfra.api.operation import operation
from pyinfra.context import host

from pgfortress.errors import SpecError
from pgfortress.plan.package_lists import attempt_seconds_from, refresh_script

__all__ = ["refresh_package_lists"]


@operation(is_idempotent=False)
def refresh_package_lists() -> Generator[StringCommand, None, None]:
    """``apt-get update``, each attempt time-limited, tried again on failure.

    ``apt_refresh_seconds`` in the host's data sets one attempt's limit
    (default 300); a bad value stops the deploy while operations are
    prepared, before any host is changed.
    """
    data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
    try:
        seconds = attempt_seconds_from(host.name, data)
    except SpecError as error:
        raise DeployError(str(error)) from error
    yield StringCommand(refresh_script(attempt_seconds=seconds))
