"""What an inventory says about one host's firewall, checked before any host is touched.

The firewall is derived from the policy the rest of the toolkit already
reads, so the two cannot drift apart:

- SSH from ``firewall_admin_networks`` (required: without it nobody could
  administer the host);
- PostgreSQL's port (on hosts with ``postgres_listen``) from the admin
  networks and every network an accepting ``postgres_hba`` rule names, or
  from ``firewall_postgres_networks`` when it is given;
- the gateway's port (on hosts with ``gateway_listen``) from
  ``gateway_allowed_networks``, or from anywhere when that list is empty,
  as the gateway's own address filter reads it;
- Redis's port (on hosts with ``redis_listen``) from the gateways of the
  inventory that use this Redis, or from ``firewall_redis_networks``;
- LDAP (389, StartTLS) and LDAPS (636) on directory hosts (``ldap_listen``)
  from ``firewall_ldap_networks``, which such a host must name: the database
  hosts that check people's passwords there connect from addresses the
  inventory does not otherwise state;
- extra ports from ``firewall_allow``.

Every key this module reads for itself starts with ``firewall_``; an unknown
one is an error with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import SpecError
from .networks import Network, parse_network

__all__ = [
    "AllowRule",
    "FirewallHostSpec",
    "Network",
    "ServicePorts",
    "firewall_from_host_data",
    "firewall_warnings",
    "hba_networks",
    "parse_network",
]


_DOC = "see docs/reference/firewall.md"


def _networks(values: object, field: str) -> list[Network]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValueError(f"{field}: write a list of networks, such as ['10.0.0.0/24']")
    return [parse_network(value, f"{field}[{i}]") for i, value in enumerate(values)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class AllowRule(_Strict):
    """One extra port the operator opens, from the networks named."""

    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    networks: list[str] = Field(min_length=1)
    comment: str | None = None

    @field_validator("networks")
    @classmethod
    def _cidr(cls, values: list[str]) -> list[str]:
        _networks(values, "networks")
        return values

    @field_validator("comment")
    @classmethod
    def _comment(cls, value: str | None) -> str | None:
        if value is not None and not all(c.isprintable() and c != '"' for c in value):
            raise ValueError(
                "comment: one line of printable text without double quotes"
            )
        return value


class ServicePorts(_Strict):
    """A TCP port of a service and the networks that may reach it."""

    name: str
    port: int = Field(ge=1, le=65535)
    networks: tuple[Network, ...]


class FirewallHostSpec(_Strict):
    """Everything the firewall of one host needs, validated."""

    host: str
    admin_networks: tuple[Network, ...] = Field(min_length=1)
    ssh_port: int = Field(default=22, ge=1, le=65535)
    services: tuple[ServicePorts, ...] = ()
    allow: tuple[AllowRule, ...] = ()
    confirm_seconds: int = Field(default=60, ge=15, le=600)


_KEYS = (
    "firewall_admin_networks",
    "firewall_ssh_port",
    "firewall_postgres_networks",
    "firewall_redis_networks",
    "firewall_ldap_networks",
    "firewall_allow",
    "firewall_confirm_seconds",
)


def firewall_from_host_data(
    host: str, data: Mapping[str, Any], redis_clients: Sequence[str] = ()
) -> FirewallHostSpec:
    """Validate one host's firewall data, or raise SpecError saying what to fix.

    ``redis_clients`` are the addresses of the inventory's gateways that use
    this host's Redis (the role finds them); they are used when the host has
    ``redis_listen`` and no ``firewall_redis_networks``.
    """
    for key in data:
        if key.startswith("firewall_") and key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"did you mean {close[0]}?" if close else _DOC
            raise SpecError(f"host {host}: {key}: unknown key; {hint}")
    try:
        admin = _admin_networks(data)
        services = _services(data, admin, redis_clients)
        values: dict[str, Any] = {"admin_networks": admin, "services": services}
    except ValueError as error:
        raise SpecError(f"host {host}: {error}") from None
    for key, field in (
        ("firewall_ssh_port", "ssh_port"),
        ("firewall_allow", "allow"),
        ("firewall_confirm_seconds", "confirm_seconds"),
    ):
        if key in data:
            values[field] = data[key]
    try:
        return FirewallHostSpec(host=host, **values)
    except ValidationError as error:
        raise SpecError(_describe(host, error)) from None


def _admin_networks(data: Mapping[str, Any]) -> tuple[Network, ...]:
    if "firewall_admin_networks" not in data:
        raise ValueError(
            "firewall_admin_networks: is required: name the networks SSH comes from "
            "(the machine that runs the deploy among them), such as ['192.0.2.0/28']; "
            f"{_DOC}"
        )
    networks = _networks(data["firewall_admin_networks"], "firewall_admin_networks")
    if not networks:
        raise ValueError(
            "firewall_admin_networks: is empty, which would keep everyone out of SSH; "
            "name at least the network the deploy runs from"
        )
    return tuple(networks)


def _services(
    data: Mapping[str, Any], admin: Sequence[Network], redis_clients: Sequence[str]
) -> tuple[ServicePorts, ...]:
    services = []
    if "postgres_listen" in data:
        services.append(_postgres(data, admin))
    if "gateway_listen" in data:
        allowed = _networks(
            data.get("gateway_allowed_networks") or [], "gateway_allowed_networks"
        )
        if not allowed:  # the gateway's own filter reads an empty list as "anyone"
            allowed = [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        services.append(_service("gateway", data, "gateway_port", 8443, allowed))
    if "redis_listen" in data:
        if "firewall_redis_networks" in data:
            clients = _networks(
                data["firewall_redis_networks"], "firewall_redis_networks"
            )
        elif redis_clients:
            clients = [_host_network(a, "gateway_listen") for a in redis_clients]
        else:
            raise ValueError(
                "firewall_redis_networks: no gateway of the inventory uses this Redis "
                "(gateway_limits.redis_host), so nobody could reach it; name its "
                "clients' networks, or write [] to keep the port closed"
            )
        services.append(_service("redis", data, "redis_port", 6379, clients))
    if "ldap_listen" in data:
        services.extend(_directory(data))
    return tuple(services)


def _directory(data: Mapping[str, Any]) -> list[ServicePorts]:
    if "firewall_ldap_networks" not in data:
        raise ValueError(
            "firewall_ldap_networks: is required on a directory host (ldap_listen): "
            "name the database hosts whose ldap rules check passwords here, such as "
            "['192.0.2.10/32'], or write [] to keep LDAP closed"
        )
    clients = _networks(data["firewall_ldap_networks"], "firewall_ldap_networks")
    return [
        ServicePorts(name="ldap", port=389, networks=tuple(clients)),
        ServicePorts(name="ldaps", port=636, networks=tuple(clients)),
    ]


def _postgres(data: Mapping[str, Any], admin: Sequence[Network]) -> ServicePorts:
    if "firewall_postgres_networks" in data:
        networks = _networks(
            data["firewall_postgres_networks"], "firewall_postgres_networks"
        )
    else:
        networks = hba_networks(data.get("postgres_hba") or [])
    return _service("postgres", data, "postgres_port", 5432, [*admin, *networks])


def hba_networks(rules: object) -> list[Network]:
    """The networks of the ``postgres_hba`` rules that let clients in over TCP.

    Reject rules and socket rules open nothing. The rules themselves are
    validated by the PostgreSQL role; only what the firewall needs is read.
    """
    return [network for _, network in _accepting(rules)]


def _accepting(rules: object) -> list[tuple[int, Network]]:
    if not isinstance(rules, Sequence) or isinstance(rules, str):
        raise ValueError(
            "postgres_hba: write a list of rules; see docs/reference/inventory.md"
        )
    found = []
    for position, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        if rule.get("type", "hostssl") == "local" or rule.get("method") == "reject":
            continue
        if rule.get("address") is not None:
            where = f"postgres_hba[{position}].address"
            found.append((position, parse_network(rule["address"], where)))
    return found


def firewall_warnings(spec: FirewallHostSpec, data: Mapping[str, Any]) -> list[str]:
    """Legal policies that are likely mistakes, one sentence each.

    - ``firewall_postgres_networks`` leaves out the network of an accepting
      ``postgres_hba`` rule: PostgreSQL would let those clients in, the
      firewall drops them first.
    - a gateway with no ``gateway_allowed_networks``: its port is open to
      every address.
    """
    warnings = []
    services = {service.name: service for service in spec.services}
    postgres = services.get("postgres")
    if postgres is not None and "firewall_postgres_networks" in data:
        for position, network in _accepting(data.get("postgres_hba") or []):
            if not any(_inside(network, other) for other in postgres.networks):
                warnings.append(
                    f"postgres_hba[{position}] lets clients in from {network}, but "
                    "the firewall drops them: the network is in neither "
                    "firewall_admin_networks nor firewall_postgres_networks; add it "
                    "there, or remove the rule"
                )
    gateway = services.get("gateway")
    if gateway is not None and not data.get("gateway_allowed_networks"):
        warnings.append(
            f"gateway_allowed_networks is empty, so the gateway's port "
            f"{gateway.port} is open to every address; name the clients' networks "
            "to close it to the rest"
        )
    return warnings


def _inside(network: Network, other: Network) -> bool:
    if isinstance(network, ipaddress.IPv4Network):
        return isinstance(other, ipaddress.IPv4Network) and network.subnet_of(other)
    return isinstance(other, ipaddress.IPv6Network) and network.subnet_of(other)


def _service(
    name: str,
    data: Mapping[str, Any],
    port_key: str,
    default: int,
    nets: Sequence[Network],
) -> ServicePorts:
    port = data.get(port_key, default)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ValueError(
            f"{port_key}: {port!r} is not a port; write a number from 1 to 65535"
        )
    return ServicePorts(name=name, port=port, networks=tuple(nets))


def _host_network(address: str, field: str) -> Network:
    try:
        return ipaddress.ip_network(address)
    except ValueError:
        raise ValueError(
            f"{field}: {address!r} of a gateway using this Redis is not an address; "
            "name the gateways' networks in firewall_redis_networks"
        ) from None


def _describe(host: str, error: ValidationError) -> str:
    fields = {
        "ssh_port": "firewall_ssh_port",
        "allow": "firewall_allow",
        "confirm_seconds": "firewall_confirm_seconds",
    }
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        loc = list(item["loc"])
        where = fields.get(str(loc[0]), str(loc[0])) if loc else "(data)"
        for part in loc[1:]:
            where += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = f"is required; {_DOC}"
        elif item["type"] == "extra_forbidden":
            message = (
                "unknown key; the keys of a rule are port, protocol, networks, comment"
            )
        elif item["type"] in {"greater_than_equal", "less_than_equal", "literal_error"}:
            message = f"{message}; change the value"
        lines.append(f"host {host}: {where}: {message}")
    return "\n".join(lines)
