"""The host's release, from ``os-release`` alone.

pyinfra's ``LinuxDistribution`` fact lists every ``/etc/*-release`` file on
the host and reads each (three processes there), then hands them to the
``distro`` library through temporary files on the control machine. The roles
need the distribution's id and major version only: :data:`OS_RELEASE_COMMAND`
prints the one file the os-release specification names (``/etc/os-release``,
else ``/usr/lib/os-release``), and :func:`parse_os_release` reads it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["OS_RELEASE_COMMAND", "OsRelease", "parse_os_release"]

OS_RELEASE_COMMAND = (
    "if [ -r /etc/os-release ]; then cat /etc/os-release; "
    "else cat /usr/lib/os-release; fi"
)


@dataclass(frozen=True)
class OsRelease:
    """``ID`` (lower case, ``debian`` on Debian), ``NAME`` for messages, and
    the major of ``VERSION_ID`` (None on testing and unstable, which have none)."""

    id: str | None = None
    name: str | None = None
    major: int | None = None


def parse_os_release(lines: Iterable[str]) -> OsRelease:
    """``KEY=value`` lines, values quoted as in a shell; others are skipped."""
    values: dict[str, str] = {}
    for line in lines:
        key, sep, raw = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [raw]
        values[key] = " ".join(words)
    version = values.get("VERSION_ID", "").split(".")[0]
    return OsRelease(
        id=values.get("ID") or None,
        name=values.get("NAME") or None,
        major=int(version) if version.isdigit() else None,
    )
