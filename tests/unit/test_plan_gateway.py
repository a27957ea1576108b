"""The gateway's configuration file and unit, rendered from inventory data."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan.gateway import (
    GatewayLayout,
    render_gateway_config,
    render_gateway_unit,
)
from pgfortress.spec.gateway import gateway_from_host_data

BASE: dict[str, Any] = {
    "gateway_database": {
        "host": "10.0.0.10",
        "dbname": "app",
        "password_secret": "db1/authenticator",
    },
    "gateway_api": {
        "schema": "api",
        "anonymous_role": "web_anon",
        "allowed_roles": ["web_anon", "web_user"],
    },
    "gateway_listen": "10.0.0.11",
    "gateway_ca_dir": "/srv/ca",
    "pgfortress_secrets_dir": "/srv/secrets",
}


def config(**data: Any) -> dict[str, Any]:
    spec = gateway_from_host_data("gw1", BASE | data)
    return tomllib.loads(render_gateway_config(spec, GatewayLayout()))


def test_config_is_valid_toml_with_every_section() -> None:
    parsed = config()
    assert set(parsed) == {"database", "api", "jwt", "cors", "limits", "server"}
    assert parsed["database"]["user"] == "authenticator"
    assert parsed["database"]["password_file"] == "/etc/pgfortress-gateway/db-password"
    assert parsed["api"]["allowed_roles"] == ["web_anon", "web_user"]
    assert parsed["server"]["listen_host"] == "10.0.0.11"
    assert parsed["server"]["metrics_host"] == "127.0.0.1"


def test_values_with_quotes_stay_valid_toml() -> None:
    parsed = config(gateway_cors_origins=['https://a.example"], x = ["'])
    assert parsed["cors"]["allowed_origins"] == ['https://a.example"], x = ["']


def test_unit_is_sandboxed_and_filters_addresses() -> None:
    spec = gateway_from_host_data(
        "gw1", BASE | {"gateway_allowed_networks": ["10.0.0.0/24"]}
    )
    unit = render_gateway_unit(spec, GatewayLayout())
    for line in (
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost 10.0.0.0/24",
        "User=pgfortress-gw",
    ):
        assert line in unit.splitlines()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"gateway_listen": "eth0"}, "listen: 'eth0' is not an address"),
        ({"gateway_lisen": "10.0.0.1"}, "did you mean gateway_listen?"),
        ({"gateway_allowed_networks": ["10.0.0.1/24"]}, "not a network in CIDR"),
        ({"gateway_api": {"allowed_roles": ["pg_read_all_data"]}}, "not a plain"),
        ({"gateway_limits": {"per_address": "lots"}}, "not a rate such as"),
        ({"gateway_database": {"host": "x"}}, "database.dbname: is required"),
    ],
)
def test_bad_gateway_data_is_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        gateway_from_host_data("gw1", BASE | data)
    assert str(caught.value).startswith("host gw1: ")
    assert fragment in str(caught.value)
