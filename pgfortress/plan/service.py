"""A systemd unit's state: does it run, does it start at boot?

pyinfra's ``SystemdStatus`` and ``SystemdEnabled`` facts each start
``systemctl``; :func:`service_state_command` asks it once for both, and
:func:`parse_service_state` reads the answer with the same meaning as those
facts (the sub-states and unit-file states they count as running and enabled).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ServiceState", "parse_service_state", "service_state_command"]

RUNNING = frozenset({"running", "waiting", "exited", "listening", "mounted"})
ENABLED = frozenset({"enabled", "static"})


@dataclass(frozen=True)
class ServiceState:
    """Whether the unit runs and whether it is enabled. A unit systemd does
    not know (the package is not installed yet) does neither."""

    running: bool = False
    enabled: bool = False


def service_state_command(unit: str) -> str:
    """One ``systemctl show`` printing what :func:`parse_service_state` reads."""
    return (
        "systemctl show --property SubState --property UnitFileState "
        f"{shlex.quote(unit)}"
    )


def parse_service_state(lines: Iterable[str]) -> ServiceState:
    """The output of :func:`service_state_command` as a :class:`ServiceState`."""
    values = dict(line.strip().split("=", 1) for line in lines if "=" in line)
    return ServiceState(
        running=values.get("SubState") in RUNNING,
        enabled=values.get("UnitFileState") in ENABLED,
    )
