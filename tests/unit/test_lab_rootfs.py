"""Naming of the cached root filesystem."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgfortress.errors import LabError
from pgfortress.lab.platforms import PLATFORMS, platform_named
from pgfortress.lab.rootfs import PACKAGES, cache_key, tarball_path

SUITE = "bookworm"


def test_cache_key_is_stable_and_ignores_package_order() -> None:
    assert cache_key(SUITE, PACKAGES) == cache_key(SUITE, tuple(reversed(PACKAGES)))
    assert len(cache_key(SUITE, PACKAGES)) == 12


def test_cache_key_changes_with_suite_or_packages() -> None:
    keys = {
        cache_key(SUITE, PACKAGES),
        cache_key("trixie", PACKAGES),
        cache_key(SUITE, (*PACKAGES, "less")),
    }
    assert len(keys) == 3


def test_tarball_lives_in_the_rootfs_cache_under_its_platform() -> None:
    assert tarball_path(Path("/c"), "debian12", "abc") == Path(
        "/c/rootfs/debian12-abc.tar.zst"
    )
    assert tarball_path(Path("/c"), "debian13", "abc") == Path(
        "/c/rootfs/debian13-abc.tar.zst"
    )


def test_platforms_name_their_suite_and_postgresql() -> None:
    assert platform_named("debian12").suite == "bookworm"
    assert platform_named("debian12").postgres_major == 15
    assert platform_named("debian13").suite == "trixie"
    assert platform_named("debian13").postgres_major == 17
    assert sorted(PLATFORMS) == ["debian12", "debian13"]


def test_an_unknown_platform_is_refused_with_the_choices() -> None:
    with pytest.raises(LabError, match=r"'debian11'.*debian12, debian13.*--platform"):
        platform_named("debian11")


def test_hosts_get_what_booting_and_ssh_need() -> None:
    assert {"systemd", "systemd-sysv", "openssh-server", "python3"} <= set(PACKAGES)
