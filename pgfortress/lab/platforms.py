"""The Debian releases a lab host can run, and the PostgreSQL each one ships.

A platform names a Debian release by the version people say ("debian13"), the
codename apt and debootstrap use ("trixie"), and the PostgreSQL major version
its archive carries, which is the one the deploys install there.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgfortress.errors import LabError

__all__ = ["DEFAULT_PLATFORM", "PLATFORMS", "Platform", "platform_named"]


@dataclass(frozen=True)
class Platform:
    """One Debian release as the lab builds it."""

    name: str
    suite: str
    postgres_major: int


PLATFORMS = {
    platform.name: platform
    for platform in (
        Platform("debian12", "bookworm", 15),
        Platform("debian13", "trixie", 17),
    )
}
DEFAULT_PLATFORM = "debian12"


def platform_named(name: str) -> Platform:
    """The platform called ``name``; LabError listing the choices otherwise."""
    found = PLATFORMS.get(name)
    if found is None:
        raise LabError(
            f"unknown platform {name!r}: choose one of {', '.join(PLATFORMS)} "
            "(--platform)"
        )
    return found
