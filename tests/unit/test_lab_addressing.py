"""Choosing a lab's networks: stable per name, never clashing."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network, ip_network

import pytest

from pgfortress.errors import LabError
from pgfortress.lab.addressing import (
    SLOTS,
    Allocation,
    Network,
    allocate,
    preferred_slot,
    routes_from_json,
)


@pytest.mark.parametrize(
    ("slot", "subnet", "subnet6"),
    [
        (0, "10.213.0.0/24", "fd70:6766:213::/64"),
        (189, "10.213.189.0/24", "fd70:6766:213:bd::/64"),
        (255, "10.213.255.0/24", "fd70:6766:213:ff::/64"),
    ],
)
def test_slot_maps_to_one_v4_and_one_v6_network(
    slot: int, subnet: str, subnet6: str
) -> None:
    allocation = Allocation(slot)
    assert allocation.subnet == IPv4Network(subnet)
    assert allocation.subnet6 == IPv6Network(subnet6)


@pytest.mark.parametrize(
    ("index", "address", "address6"),
    [
        (0, "10.213.7.10", "fd70:6766:213:7::10"),
        (3, "10.213.7.13", "fd70:6766:213:7::13"),
        (19, "10.213.7.29", "fd70:6766:213:7::29"),
    ],
)
def test_host_addresses_read_alike_in_both_families(
    index: int, address: str, address6: str
) -> None:
    allocation = Allocation(7)
    assert str(allocation.host(index)) == address
    assert str(allocation.host6(index)) == address6


def test_gateway_is_first_address() -> None:
    assert str(Allocation(7).gateway) == "10.213.7.1"
    assert str(Allocation(7).gateway6) == "fd70:6766:213:7::1"


def test_preferred_slot_is_stable_and_in_range() -> None:
    assert preferred_slot("demo") == preferred_slot("demo")
    assert all(0 <= preferred_slot(f"lab{i}") < SLOTS for i in range(50))


def test_free_preferred_slot_is_used() -> None:
    assert allocate("demo", [], []).slot == preferred_slot("demo")


START = preferred_slot("demo")


def _slot(offset: int) -> int:
    return (START + offset) % SLOTS


@pytest.mark.parametrize(
    ("taken", "routes", "expected"),
    [
        pytest.param([_slot(0)], [], _slot(1), id="held-by-another-lab"),
        pytest.param([_slot(0), _slot(1)], [], _slot(2), id="two-held"),
        pytest.param([], [Allocation(_slot(0)).subnet], _slot(1), id="v4-route"),
        pytest.param([], [Allocation(_slot(0)).subnet6], _slot(1), id="v6-route"),
        pytest.param(
            [_slot(0)], [Allocation(_slot(1)).subnet], _slot(2), id="held-then-routed"
        ),
        pytest.param(
            [],
            [ip_network(f"{Allocation(_slot(0)).gateway}/32")],
            _slot(1),
            id="host-route-inside",
        ),
    ],
)
def test_busy_or_routed_slots_are_skipped(
    taken: list[int], routes: list[Network], expected: int
) -> None:
    assert allocate("demo", taken, routes).slot == expected


def test_wide_route_covering_the_pool_exhausts_it() -> None:
    with pytest.raises(LabError, match="no free lab network"):
        allocate("demo", [], [ip_network("10.0.0.0/8")])


def test_all_slots_taken_exhausts_the_pool() -> None:
    with pytest.raises(LabError, match="lab down"):
        allocate("demo", range(SLOTS), [])


def test_routes_from_json_skips_defaults_and_prefixless_types() -> None:
    text = json.dumps(
        [
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"dst": "198.51.100.7", "type": "local", "dev": "eth0"},
            {"dst": "multicast", "dev": "eth0"},
            {"dst": "fd00::/64", "dev": "eth0"},
        ]
    )
    assert routes_from_json(text) == [
        ip_network("192.0.2.0/24"),
        ip_network("198.51.100.7/32"),
        ip_network("fd00::/64"),
    ]


def test_routes_from_empty_output_is_empty() -> None:
    assert routes_from_json("") == []
