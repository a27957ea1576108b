"""Naming of the cached root filesystem."""

from __future__ import annotations

from pathlib import Path

from pgfortress.lab.rootfs import PACKAGES, SUITE, cache_key, tarball_path


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


def test_tarball_lives_in_the_rootfs_cache() -> None:
    assert tarball_path(Path("/c"), "abc") == Path("/c/rootfs/debian12-abc.tar.zst")


def test_hosts_get_what_booting_and_ssh_need() -> None:
    assert {"systemd", "systemd-sysv", "openssh-server", "python3"} <= set(PACKAGES)
