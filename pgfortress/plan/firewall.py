"""The host firewall: validated spec in, an nftables ruleset out.

The plan is a list of rules, each one port opened to some networks, with the
networks of each family merged (``10.0.0.0/25`` and ``10.0.0.128/25`` become
``10.0.0.0/24``; a network inside another disappears), so the ruleset reads
the way the policy means and nft never sees overlapping set elements. The
rendered text replaces ``table inet pgfortress`` in one transaction and
touches no other table. Everything else that arrives is dropped, after
loopback, established connections and the ICMP a network needs.

:func:`lockout_problem` tells, from the address the deploy connects from,
whether the policy would keep the deploy itself out of SSH.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ..spec.firewall import FirewallHostSpec, Network
from ._templates import render

__all__ = [
    "CONF_FILE",
    "INCLUDE_LINE",
    "RULES_FILE",
    "TABLE",
    "FirewallRule",
    "firewall_rules",
    "lockout_problem",
    "render_nftables",
]

TABLE = "inet pgfortress"
RULES_FILE = "/etc/nftables.d/pgfortress.nft"
CONF_FILE = "/etc/nftables.conf"
INCLUDE_LINE = f'include "{RULES_FILE}"'

ICMP = ("destination-unreachable", "time-exceeded", "parameter-problem", "echo-request")
ICMPV6 = (
    "destination-unreachable",
    "packet-too-big",
    "time-exceeded",
    "parameter-problem",
    "echo-request",
    "mld-listener-query",
)
# Neighbour and router discovery: valid only with hop limit 255 (RFC 4861).
ICMPV6_LINK = ("nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert")

_LABELS = {
    "ssh": "SSH from the admin networks (firewall_admin_networks)",
    "postgres": "PostgreSQL from the admin networks and the postgres_hba clients",
    "gateway": "the gateway from its clients (gateway_allowed_networks)",
    "redis": "Redis from the gateways that use it",
    "ldap": "LDAP with StartTLS from the database hosts (firewall_ldap_networks)",
    "ldaps": "LDAPS from the database hosts (firewall_ldap_networks)",
}


@dataclass(frozen=True)
class FirewallRule:
    """One port opened to some networks, each family's merged and sorted."""

    name: str
    protocol: str
    port: int
    v4: tuple[ipaddress.IPv4Network, ...]
    v6: tuple[ipaddress.IPv6Network, ...]
    comment: str

    @property
    def sources(self) -> list[tuple[str, list[str]]]:
        """``(nft family keyword, networks)`` for each family with networks."""
        found = []
        for family, networks in (("ip", self.v4), ("ip6", self.v6)):
            if networks:
                found.append((family, [_text(n) for n in networks]))
        return found


def firewall_rules(spec: FirewallHostSpec) -> list[FirewallRule]:
    """The ports the host opens, SSH first, then services, then extras."""
    rules = [_rule("ssh", "tcp", spec.ssh_port, spec.admin_networks, _LABELS["ssh"])]
    for service in spec.services:
        label = _LABELS[service.name]
        if service.name == "postgres" and set(service.networks) == set(
            spec.admin_networks
        ):
            label = "PostgreSQL from the admin networks"
        rules.append(_rule(service.name, "tcp", service.port, service.networks, label))
    for position, extra in enumerate(spec.allow):
        networks = [ipaddress.ip_network(n) for n in extra.networks]
        label = extra.comment or f"firewall_allow[{position}]"
        rules.append(_rule("allow", extra.protocol, extra.port, networks, label))
    return [rule for rule in rules if rule.v4 or rule.v6]


def render_nftables(spec: FirewallHostSpec) -> str:
    """The file that replaces ``table inet pgfortress`` with the policy."""
    return render(
        "nftables/pgfortress.nft.j2",
        host=spec.host,
        rules=firewall_rules(spec),
        icmp=ICMP,
        icmpv6=ICMPV6,
        icmpv6_link=ICMPV6_LINK,
    )


def lockout_problem(spec: FirewallHostSpec, peer: str, port: int) -> str | None:
    """Why the policy would shut out the deploy's own SSH connection, if it would,
    starting with the key to change.

    ``peer`` is the address the host sees the deploy connect from and
    ``port`` the sshd port it connects to (both from ``SSH_CONNECTION``).
    """
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return (
            f"firewall_admin_networks: cannot tell the deploy's address from "
            f"{peer!r}; nothing was changed"
        )
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if port != spec.ssh_port:
        return (
            f"firewall_ssh_port: the deploy reaches sshd on port {port}, but "
            f"firewall_ssh_port is "
            f"{spec.ssh_port}: the firewall would close the deploy's own way in; "
            f"set firewall_ssh_port: {port}"
        )
    if not any(address in network for network in spec.admin_networks):
        single = f"{address}/{address.max_prefixlen}"
        named = ", ".join(str(n) for n in spec.admin_networks)
        return (
            f"firewall_admin_networks: the deploy connects from {address}, which "
            "firewall_admin_networks "
            f"({named}) does not include: the firewall would lock the deploy out of "
            f"SSH; add {single} (or its network) to firewall_admin_networks, or run "
            "the deploy from an admin network"
        )
    return None


def _rule(
    name: str, protocol: str, port: int, networks: Iterable[Network], comment: str
) -> FirewallRule:
    v4, v6 = _split(networks)
    return FirewallRule(name, protocol, port, v4, v6, comment)


def _split(
    networks: Iterable[Network],
) -> tuple[tuple[ipaddress.IPv4Network, ...], tuple[ipaddress.IPv6Network, ...]]:
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return (
        tuple(ipaddress.collapse_addresses(v4)),
        tuple(ipaddress.collapse_addresses(v6)),
    )


def _text(network: Network) -> str:
    """A single host as a bare address, as nft lists it back."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)
