"""Address plan of a lab: one IPv4 /24 and one IPv6 /64 per lab.

A lab's networks are picked by a *slot*, 0-255. The preferred slot is a stable
hash of the lab name, so a lab usually gets the same addresses every time it is
brought up; when that slot is held by another lab or overlaps a route the
machine already has, the next free slot is taken.

Within a slot the machine's bridge (the *gateway*) is ``.1`` / ``::1`` and hosts
are numbered from ``.10`` / ``::10`` in the order they were asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)

from pgfortress.errors import LabError

__all__ = [
    "IPV4_POOL",
    "IPV6_POOL",
    "SLOTS",
    "Allocation",
    "allocate",
    "preferred_slot",
    "routes_from_json",
]

IPV4_POOL = IPv4Network("10.213.0.0/16")
IPV6_POOL = IPv6Network("fd70:6766:213::/48")
SLOTS = 256
_FIRST_HOST = 10

Network = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Allocation:
    """The networks of one slot and the addresses inside them."""

    slot: int

    @property
    def subnet(self) -> IPv4Network:
        base = int(IPV4_POOL.network_address) + (self.slot << 8)
        return IPv4Network((base, 24))

    @property
    def subnet6(self) -> IPv6Network:
        base = int(IPV6_POOL.network_address) + (self.slot << 64)
        return IPv6Network((base, 64))

    @property
    def gateway(self) -> IPv4Address:
        return self.subnet.network_address + 1

    @property
    def gateway6(self) -> IPv6Address:
        return self.subnet6.network_address + 1

    def host(self, index: int) -> IPv4Address:
        """IPv4 address of host number ``index`` (0-based)."""
        return self.subnet.network_address + _FIRST_HOST + index

    def host6(self, index: int) -> IPv6Address:
        """IPv6 address of host number ``index``, spelled like its IPv4 one.

        Host ``.10`` gets ``::10``: the decimal digits are read as hex so the
        two addresses of a host are easy to match by eye.
        """
        return self.subnet6.network_address + int(str(_FIRST_HOST + index), 16)

    def overlaps(self, network: Network) -> bool:
        if isinstance(network, IPv4Network):
            return self.subnet.overlaps(network)
        return self.subnet6.overlaps(network)


def preferred_slot(name: str) -> int:
    """The slot a lab name hashes to; stable across runs and machines."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") % SLOTS


def allocate(name: str, taken: Iterable[int], routes: Iterable[Network]) -> Allocation:
    """Pick the first usable slot at or after the name's preferred slot.

    ``taken`` are slots recorded by other labs; ``routes`` are the machine's
    current non-default routes, which a lab must not shadow.
    """
    busy = set(taken)
    networks = list(routes)
    start = preferred_slot(name)
    for step in range(SLOTS):
        candidate = Allocation((start + step) % SLOTS)
        if candidate.slot in busy:
            continue
        if any(candidate.overlaps(network) for network in networks):
            continue
        return candidate
    raise LabError(
        f"no free lab network left in {IPV4_POOL} / {IPV6_POOL}: take down labs "
        "you no longer need (`pgfortress lab list`, `pgfortress lab down`)"
    )


def routes_from_json(text: str) -> list[Network]:
    """Destination networks of ``ip -j route`` output, default routes left out."""
    networks: list[Network] = []
    for route in json.loads(text or "[]"):
        destination = route.get("dst", "default")
        if destination == "default":
            continue
        try:
            networks.append(ip_network(destination, strict=False))
        except ValueError:
            # Kernel route types such as "multicast" have no prefix to clash with.
            continue
    return networks
