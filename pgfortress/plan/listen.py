"""Turn the inventory's listen entries into the addresses PostgreSQL binds."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from ..errors import SpecError

__all__ = ["LOOPBACK", "resolve_listen"]

LOOPBACK = ("127.0.0.1", "::1")


def resolve_listen(
    host: str, entries: Sequence[str], interfaces: Mapping[str, Sequence[str]]
) -> list[str]:
    """Addresses for ``listen_addresses``: loopback, then each named one.

    ``interfaces`` maps each interface of the host to its addresses, as read
    from the host. An interface name stands for all its global addresses; an
    address must belong to the host, or PostgreSQL would fail to bind it.
    """
    if list(entries) == ["*"]:
        return ["*"]
    on_host = {
        _normal(a) for addrs in interfaces.values() for a in addrs if _is_global(a)
    }
    result: list[str] = list(LOOPBACK)
    for entry in entries:
        for address in _addresses_of(host, entry, interfaces, on_host):
            if address not in result:
                result.append(address)
    return result


def _addresses_of(
    host: str,
    entry: str,
    interfaces: Mapping[str, Sequence[str]],
    on_host: set[str],
) -> list[str]:
    try:
        address = _normal(entry)
    except ValueError:
        pass
    else:
        if address not in on_host:
            raise SpecError(
                f"host {host}: postgres_listen: {entry} is not an address of this "
                f"host (it has {', '.join(sorted(on_host)) or 'none'}); name one of "
                "its addresses or an interface"
            )
        return [address]
    if entry not in interfaces:
        raise SpecError(
            f"host {host}: postgres_listen: the host has no interface {entry!r} "
            f"(it has {', '.join(sorted(interfaces))}); name an existing interface"
        )
    usable = [_normal(a) for a in interfaces[entry] if _is_global(a)]
    if not usable:
        raise SpecError(
            f"host {host}: postgres_listen: interface {entry} has no address to "
            "listen on; give it an address or name another interface"
        )
    return usable


def _normal(text: str) -> str:
    return str(ipaddress.ip_address(text.split("%", 1)[0]))


def _is_global(text: str) -> bool:
    # Link-local addresses need a scope id and are useless to remote clients.
    return not ipaddress.ip_address(text.split("%", 1)[0]).is_link_local
