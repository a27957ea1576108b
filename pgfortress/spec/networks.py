"""Networks as operators write them, checked the same way wherever they appear.

pg_hba rules and the host firewall both take CIDR networks; this is the one
parser behind them, with the mistakes it names:

- host bits set (``10.0.0.5/24``: did you mean ``10.0.0.0/24``?);
- an IPv4 address with an IPv6-sized prefix (``10.0.0.1/64``);
- an IPv4 network written in IPv6's IPv4-mapped form (``::ffff:10.0.0.0/120``),
  which IPv4 clients never match.
"""

from __future__ import annotations

import ipaddress

__all__ = ["Network", "parse_network"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: object, field: str) -> Network:
    """A network in CIDR form (an address alone is one host); errors name ``field``."""
    if not isinstance(text, str):
        raise ValueError(
            f"{field}: {text!r} is not text; write a network such as 10.0.0.0/24"
        )
    _check_family(text, field)
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    else:
        _check_mapped(text, network, field)
        return network
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{field}: {text!r} is not an IPv4 or IPv6 network; write it in CIDR "
            "form such as 10.0.0.0/24, 192.0.2.7/32 or 2001:db8::/64"
        ) from None
    raise ValueError(
        f"{field}: {text!r} has host bits set; did you mean {loose.with_prefixlen}? "
        "(use /32 or /128 for a single address)"
    )


def _check_family(text: str, field: str) -> None:
    """Refuse an IPv4 address with an IPv6-sized prefix, such as 10.0.0.0/64."""
    address, slash, prefix = text.partition("/")
    if ":" in address or not slash or not prefix.isdigit() or int(prefix) <= 32:
        return
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return
    raise ValueError(
        f"{field}: {text!r} puts an IPv6 prefix length (/{prefix}) on the IPv4 "
        f"address {address}; an IPv4 network takes /0 to /32 (such as "
        f"{address}/32), an IPv6 one is written with colons (2001:db8::/64)"
    )


def _check_mapped(text: str, network: Network, field: str) -> None:
    """Refuse an IPv4 network written in IPv6's IPv4-mapped form (::ffff:a.b.c.d)."""
    if not isinstance(network, ipaddress.IPv6Network) or network.prefixlen < 96:
        return
    mapped = network.network_address.ipv4_mapped
    if mapped is None:
        return
    v4 = ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    raise ValueError(
        f"{field}: {text!r} is the IPv4 network {v4} written as IPv6 "
        "(IPv4-mapped); IPv4 clients are matched only against IPv4 networks, "
        f"so it would never match: write {v4}"
    )
