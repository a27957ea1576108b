"""Inventory validation: every bad input names the host, the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from pgfortress.errors import SpecError
from pgfortress.spec import from_host_data

BASE: dict[str, Any] = {
    "postgres_listen": ["eth0"],
    "postgres_tls": {"ca_dir": "/srv/ca"},
}


def rule(**overrides: Any) -> dict[str, Any]:
    return {"databases": "app", "users": "app_rw", "address": "10.0.0.0/24"} | overrides


def with_data(**data: Any) -> dict[str, Any]:
    return BASE | data


def test_minimal_inventory_gets_hardened_defaults() -> None:
    spec = from_host_data("db1", BASE)
    assert spec.socket.mode == "0770"
    assert spec.socket.group == "pgsocket"
    assert spec.tls.min_protocol == "TLSv1.2"
    assert spec.logging.statement == "ddl"
    assert spec.hba == []


def test_names_may_be_written_as_one_comma_separated_string() -> None:
    spec = from_host_data("db1", with_data(postgres_hba=[rule(users="a, +b")]))
    assert spec.hba[0].users == ["a", "+b"]


BAD_INPUTS = [
    pytest.param(
        with_data(postgres_hba=[rule(address="10.0.0.300/24")]),
        ["postgres_hba[0]", "'10.0.0.300/24' is not an IPv4 or IPv6 network"],
        id="malformed-network",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address="10.0.0.7/24")]),
        ["postgres_hba[0]", "did you mean 10.0.0.0/24"],
        id="host-bits-set",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address="2001:db8::1/64")]),
        ["postgres_hba[0]", "host bits set", "2001:db8::/64"],
        id="ipv6-host-bits",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="scram")]),
        ["postgres_hba[0]", "'scram' is not a PostgreSQL authentication method"],
        id="unknown-method",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="trust")]),
        ["postgres_hba[0]", "'trust' over TCP", "scram-sha-256"],
        id="trust-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="md5")]),
        ["'md5' over TCP"],
        id="md5-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="password")]),
        ["'password' over TCP"],
        id="password-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="host")]),
        ["type: 'host' accepts connections without TLS", "use hostssl"],
        id="accepting-rule-without-tls",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="local", method="trust", address=None)]),
        ["'trust' is not allowed on the local socket"],
        id="trust-on-socket",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="local")]),
        ["takes no address"],
        id="local-with-address",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address=None)]),
        ["needs a network"],
        id="tcp-without-address",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(options={"clientcert": "1"})]),
        ["clientcert='1' is not accepted", "clientcert=verify-full"],
        id="old-clientcert-1",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(options={"ldapserver": "x"})]),
        ["'ldapserver' is not an option of method 'scram-sha-256'"],
        id="option-of-other-method",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(users="app rw")]),
        ["'app rw' is not a plain name"],
        id="name-with-space",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(databases=[])]),
        ["postgres_hba[0].databases", "at least 1"],
        id="no-database",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(extra="x")]),
        ["postgres_hba[0].extra", "unknown key", "databases"],
        id="unknown-rule-field",
    ),
    pytest.param(
        with_data(postgres_listen=["10.0.0.1", "*"]),
        ["postgres_listen", "'*' already means every address"],
        id="wildcard-with-others",
    ),
    pytest.param(
        with_data(postgres_listen=["eth0; rm -rf /"]),
        ["postgres_listen", "neither an IP address nor an interface name"],
        id="listen-garbage",
    ),
    pytest.param(
        with_data(postgres_listen=[]),
        ["postgres_listen", "at least 1"],
        id="listen-empty",
    ),
    pytest.param(
        {"postgres_listen": ["eth0"]},
        ["postgres_tls: is required"],
        id="missing-tls",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "cert_file": "/srv/c.pem"}),
        ["cert_file and key_file go together"],
        id="cert-without-key",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "min_protocol": "TLSv1"}),
        ["postgres_tls.min_protocol", "'TLSv1.2' or 'TLSv1.3'"],
        id="old-tls",
    ),
    pytest.param(
        with_data(postgres_socket={"mode": "0777"}),
        ["postgres_socket.mode", "'0700' or '0770'"],
        id="world-writable-socket",
    ),
    pytest.param(
        with_data(postgres_socket={"directory": "run/pg"}),
        ["postgres_socket.directory", "absolute path"],
        id="relative-socket-dir",
    ),
    pytest.param(
        with_data(postgres_socket={"group": "Root Group"}),
        ["postgres_socket.group", "not a valid Unix group name"],
        id="bad-group",
    ),
    pytest.param(
        with_data(postgres_settings={"listen_addresses": "*"}),
        ["postgres_settings", "managed by pgfortress", "postgres_listen"],
        id="override-managed-setting",
    ),
    pytest.param(
        with_data(postgres_settings={"ssl_ciphers": "ALL:aNULL"}),
        ["postgres_settings", "'ssl_ciphers' is managed", "postgres_tls"],
        id="weaken-tls-through-settings",
    ),
    pytest.param(
        with_data(postgres_settings={"hba_file": "/tmp/open.conf"}),
        ["postgres_settings", "owns PostgreSQL's configuration files"],
        id="move-hba-file",
    ),
    pytest.param(
        with_data(postgres_settings={"password_encryption": "md5"}),
        ["always uses scram-sha-256"],
        id="md5-password-encryption",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "ca_dri": "/x"}),
        ["postgres_tls.ca_dri", "unknown key", "ca_dir"],
        id="nested-typo",
    ),
    pytest.param(
        with_data(postgres_listen="eth0"),
        ["postgres_listen", "write a list"],
        id="listen-not-a-list",
    ),
    pytest.param(
        with_data(postgres_listen=["0.0.0.0"]),
        ["postgres_listen", "write ['*']"],
        id="listen-any-address",
    ),
    pytest.param(
        with_data(postgres_settings={"work mem": "4MB"}),
        ["'work mem' is not a PostgreSQL setting name"],
        id="bad-setting-name",
    ),
    pytest.param(
        with_data(postgres_logging={"line_prefix": "%m "}),
        ["postgres_logging.line_prefix", "lacks %p, %u, %d, %r"],
        id="audit-prefix-incomplete",
    ),
    pytest.param(
        with_data(postgres_port=80),
        ["postgres_port", "greater than or equal to 1024"],
        id="privileged-port",
    ),
    pytest.param(
        with_data(postgres_probe_role={"name": "probe"}),
        ["probe_role needs pgfortress_secrets_dir"],
        id="probe-without-secrets-dir",
    ),
    pytest.param(
        with_data(postgres_database_roles="specs/lab.yml"),
        ["database_roles needs pgfortress_secrets_dir"],
        id="database-roles-without-secrets-dir",
    ),
    pytest.param(
        with_data(postgres_lisen=["eth0"]),
        ["postgres_lisen: unknown key; did you mean postgres_listen?"],
        id="typo-in-key",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "dns_names": ["db_1..x"]}),
        ["postgres_tls.dns_names", "not a DNS name"],
        id="bad-dns-name",
    ),
]


@pytest.mark.parametrize(("data", "expected"), BAD_INPUTS)
def test_bad_input_is_refused_with_host_field_and_fix(
    data: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        from_host_data("db7", data)
    message = str(caught.value)
    assert message.startswith("host db7: ")
    for fragment in expected:
        assert fragment in message


def test_spec_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="postgres_tls"):
        from_host_data("db1", {"postgres_listen": ["eth0"]})
