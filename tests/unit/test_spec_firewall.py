"""Firewall inventory data: what is derived from the policy, and every refusal."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pgfortress.errors import SpecError
from pgfortress.spec.firewall import firewall_from_host_data, firewall_warnings

ADMIN = ["192.0.2.0/28", "2001:db8:a::/64"]
HBA = [
    {"databases": "app", "users": "web", "address": "198.51.100.0/24"},
    {"databases": "all", "users": "all", "address": "10.0.0.0/8", "method": "reject"},
    {"type": "local", "databases": "all", "users": "ops", "method": "peer"},
    {"databases": "app", "users": "web", "address": "2001:db8:b::/64"},
]


def spec_of(**data: Any) -> Any:
    return firewall_from_host_data("db1", {"firewall_admin_networks": ADMIN, **data})


def nets(*texts: str) -> tuple[Any, ...]:
    return tuple(ipaddress.ip_network(t) for t in texts)


def test_a_host_without_services_opens_only_ssh_from_the_admin_networks() -> None:
    spec = spec_of()
    assert spec.admin_networks == nets(*ADMIN)
    assert spec.ssh_port == 22
    assert spec.services == ()


def test_postgres_clients_are_the_admin_networks_and_accepting_hba_rules() -> None:
    spec = spec_of(postgres_listen=["eth0"], postgres_hba=HBA)
    (postgres,) = spec.services
    assert (postgres.name, postgres.port) == ("postgres", 5432)
    # The reject rule and the socket rule open nothing.
    assert postgres.networks == nets(*ADMIN, "198.51.100.0/24", "2001:db8:b::/64")


def test_explicit_postgres_networks_replace_the_hba_derived_ones() -> None:
    spec = spec_of(
        postgres_listen=["eth0"],
        postgres_port=6432,
        postgres_hba=HBA,
        firewall_postgres_networks=["203.0.113.0/24"],
    )
    (postgres,) = spec.services
    assert postgres.port == 6432
    assert postgres.networks == nets(*ADMIN, "203.0.113.0/24")


def test_the_gateway_port_follows_its_allowed_networks() -> None:
    spec = spec_of(
        gateway_listen="192.0.2.20",
        gateway_port=9443,
        gateway_allowed_networks=["203.0.113.0/24"],
    )
    (gateway,) = spec.services
    assert (gateway.name, gateway.port, gateway.networks) == (
        "gateway",
        9443,
        nets("203.0.113.0/24"),
    )


def test_a_gateway_without_allowed_networks_is_open_to_anyone() -> None:
    (gateway,) = spec_of(gateway_listen="192.0.2.20").services
    assert gateway.networks == nets("0.0.0.0/0", "::/0")


def test_redis_clients_are_the_gateways_that_use_it() -> None:
    spec = firewall_from_host_data(
        "cache1",
        {"firewall_admin_networks": ADMIN, "redis_listen": "192.0.2.30"},
        redis_clients=["192.0.2.20", "2001:db8:a::20"],
    )
    (redis,) = spec.services
    assert (redis.port, redis.networks) == (
        6379,
        nets("192.0.2.20/32", "2001:db8:a::20/128"),
    )


def test_a_directory_opens_ldap_and_ldaps_to_the_named_database_hosts() -> None:
    data = {"ldap_listen": "192.0.2.40", "firewall_ldap_networks": ["192.0.2.10/32"]}
    services = {s.name: (s.port, s.networks) for s in spec_of(**data).services}
    assert services == {
        "ldap": (389, nets("192.0.2.10/32")),
        "ldaps": (636, nets("192.0.2.10/32")),
    }
    closed = spec_of(ldap_listen="192.0.2.40", firewall_ldap_networks=[])
    assert {s.networks for s in closed.services} == {()}


def test_redis_networks_may_be_named_or_closed_explicitly() -> None:
    data = {"redis_listen": "192.0.2.30", "firewall_redis_networks": []}
    (redis,) = spec_of(**data).services
    assert redis.networks == ()


def test_extra_ports_and_settings() -> None:
    spec = spec_of(
        firewall_ssh_port=2222,
        firewall_confirm_seconds=120,
        firewall_allow=[
            {"port": 9100, "networks": ["192.0.2.64/26"], "comment": "node exporter"},
            {"port": 123, "protocol": "udp", "networks": ["2001:db8::/32"]},
        ],
    )
    assert (spec.ssh_port, spec.confirm_seconds) == (2222, 120)
    assert [(a.port, a.protocol) for a in spec.allow] == [(9100, "tcp"), (123, "udp")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"firewall_admin_networks": "192.0.2.0/28"},
            "firewall_admin_networks: write a list of networks",
        ),
        ({"firewall_admin_networks": []}, "would keep everyone out of SSH"),
        (
            {"firewall_admin_networks": ["192.0.2.1/24"]},
            "firewall_admin_networks[0]: '192.0.2.1/24' has host bits set; "
            "did you mean 192.0.2.0/24?",
        ),
        (
            {"firewall_admin_networks": ["office"]},
            "firewall_admin_networks[0]: 'office' is not an IPv4 or IPv6 network",
        ),
        ({"firewall_admin_network": ADMIN}, "did you mean firewall_admin_networks?"),
        ({"firewall_ssh_port": 0}, "firewall_ssh_port: Input should be greater"),
        ({"firewall_confirm_seconds": 5}, "firewall_confirm_seconds: Input should be"),
        (
            {"firewall_allow": [{"port": 80}]},
            "firewall_allow[0].networks: is required",
        ),
        (
            {"firewall_allow": [{"port": 80, "networks": ["x"], "protcol": "tcp"}]},
            "firewall_allow[0].networks: networks[0]: 'x' is not an IPv4 or IPv6",
        ),
        (
            {"firewall_allow": [{"port": 80, "networks": ADMIN, "protcol": "tcp"}]},
            "firewall_allow[0].protcol: unknown key; the keys of a rule are port,",
        ),
        (
            {"firewall_allow": [{"port": 80, "protocol": "icmp", "networks": ADMIN}]},
            "firewall_allow[0].protocol: Input should be 'tcp' or 'udp'",
        ),
        (
            {"firewall_allow": [{"port": 80, "networks": ADMIN, "comment": 'a"b'}]},
            "without double quotes",
        ),
        (
            {"postgres_listen": ["eth0"], "postgres_hba": [{"address": "10.0.0.1/8"}]},
            "postgres_hba[0].address: '10.0.0.1/8' has host bits set",
        ),
        (
            {"postgres_listen": ["eth0"], "postgres_port": "5432"},
            "postgres_port: '5432' is not a port",
        ),
        (
            {"gateway_listen": "192.0.2.20", "gateway_allowed_networks": ["10.0.0.0"]},
            None,
        ),
        (
            {
                "gateway_listen": "192.0.2.20",
                "gateway_allowed_networks": ["10.0.0.5/8"],
            },
            "gateway_allowed_networks[0]: '10.0.0.5/8' has host bits set",
        ),
        ({"redis_listen": "192.0.2.30"}, "no gateway of the inventory uses this Redis"),
        (
            {"ldap_listen": "192.0.2.40"},
            "firewall_ldap_networks: is required on a directory host",
        ),
        # The same network checks as pg_hba rules (pgfortress/spec/networks.py).
        (
            {"ldap_listen": "192.0.2.4", "firewall_ldap_networks": ["10.0.0.1/64"]},
            "firewall_ldap_networks[0]: '10.0.0.1/64' puts an IPv6 prefix length",
        ),
        (
            {
                "ldap_listen": "192.0.2.4",
                "firewall_ldap_networks": ["::ffff:10.0.0.0/120"],
            },
            "is the IPv4 network 10.0.0.0/24 written as IPv6",
        ),
        (
            {"ldap_listen": "192.0.2.40", "firewall_ldap_networks": ["192.0.2.9/24"]},
            "firewall_ldap_networks[0]: '192.0.2.9/24' has host bits set",
        ),
    ],
)
def test_bad_input_names_the_host_the_field_and_the_fix(
    data: dict[str, Any], message: str | None
) -> None:
    values = {"firewall_admin_networks": ADMIN, **data}
    if message is None:  # a bare address is a single host, which is fine
        firewall_from_host_data("db1", values)
        return
    with pytest.raises(SpecError) as caught:
        firewall_from_host_data("db1", values)
    assert str(caught.value).startswith("host db1: ")
    assert message in str(caught.value)


def test_admin_networks_are_required() -> None:
    with pytest.raises(SpecError, match="firewall_admin_networks: is required"):
        firewall_from_host_data("db1", {"postgres_listen": ["eth0"]})


def test_an_hba_network_the_firewall_drops_is_a_warning() -> None:
    data = {
        "firewall_admin_networks": ADMIN,
        "postgres_listen": ["eth0"],
        "postgres_hba": HBA,
        "firewall_postgres_networks": ["198.51.100.0/25"],
    }
    spec = firewall_from_host_data("db1", data)
    # 198.51.100.0/24 is wider than what the firewall opens; the IPv6 network
    # is in neither list; the reject rule needs nothing.
    assert firewall_warnings(spec, data) == [
        f"postgres_hba[{position}] lets clients in from {network}, but the firewall "
        "drops them: the network is in neither firewall_admin_networks nor "
        "firewall_postgres_networks; add it there, or remove the rule"
        for position, network in ((0, "198.51.100.0/24"), (3, "2001:db8:b::/64"))
    ]


def test_networks_inside_the_opened_ones_raise_no_warning() -> None:
    data = {
        "firewall_admin_networks": ADMIN,
        "postgres_listen": ["eth0"],
        "postgres_hba": HBA,
        "firewall_postgres_networks": ["198.51.0.0/16", "2001:db8::/32"],
    }
    assert firewall_warnings(firewall_from_host_data("db1", data), data) == []
    derived = {**data}
    derived.pop("firewall_postgres_networks")
    assert firewall_warnings(firewall_from_host_data("db1", derived), derived) == []


def test_a_gateway_open_to_everyone_is_a_warning() -> None:
    data = {"firewall_admin_networks": ADMIN, "gateway_listen": "192.0.2.20"}
    (warning,) = firewall_warnings(firewall_from_host_data("gw1", data), data)
    assert warning.startswith("gateway_allowed_networks is empty, so the gateway's")
    named = {**data, "gateway_allowed_networks": ["203.0.113.0/24"]}
    assert firewall_warnings(firewall_from_host_data("gw1", named), named) == []
