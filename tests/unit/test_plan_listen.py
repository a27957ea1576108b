"""listen_addresses: interfaces resolved, foreign addresses refused."""

from __future__ import annotations

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan import layout_for, resolve_listen

INTERFACES = {
    "lo": ["127.0.0.1", "::1"],
    "eth0": ["10.213.5.10", "fd70:6766:213:5::10", "fe80::1"],
    "eth1": ["192.0.2.4"],
    "dummy0": ["fe80::2"],
}


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["eth0"], ["127.0.0.1", "::1", "10.213.5.10", "fd70:6766:213:5::10"]),
        (["192.0.2.4"], ["127.0.0.1", "::1", "192.0.2.4"]),
        (["eth1", "192.0.2.4"], ["127.0.0.1", "::1", "192.0.2.4"]),
        (["fd70:6766:213:5:0:0:0:10"], ["127.0.0.1", "::1", "fd70:6766:213:5::10"]),
        (["*"], ["*"]),
    ],
)
def test_resolution(entries: list[str], expected: list[str]) -> None:
    assert resolve_listen("db1", entries, INTERFACES) == expected


@pytest.mark.parametrize(
    ("entries", "fragments"),
    [
        (["10.0.0.99"], ["host db1: postgres_listen: 10.0.0.99 is not an address"]),
        (["wlan0"], ["has no interface 'wlan0'", "eth0"]),
        (["dummy0"], ["interface dummy0 has no address to listen on"]),
    ],
)
def test_entries_that_cannot_be_bound_are_refused(
    entries: list[str], fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        resolve_listen("db1", entries, INTERFACES)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_unknown_debian_release_needs_an_explicit_version() -> None:
    with pytest.raises(SpecError, match="set postgres_version"):
        layout_for("db1", 9, None)
    assert layout_for("db1", 9, 16).version == 16
