"""The settings drop-in: every hardened value, quoted the way PostgreSQL reads it."""

from __future__ import annotations

from typing import Any

import pytest

from pgfortress.plan import PostgresLayout, layout_for, render_settings
from pgfortress.plan.settings import conf_value, managed_settings
from pgfortress.spec import from_host_data
from pgfortress.spec._setting_versions import version_problem

LISTEN = ["127.0.0.1", "::1", "10.213.5.10"]


def settings(**data: Any) -> dict[str, str]:
    base = {"postgres_listen": ["eth0"], "postgres_tls": {"ca_dir": "/srv/ca"}}
    spec = from_host_data("db1", base | data)
    text = render_settings(spec, layout_for("db1", 12, None), LISTEN)
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" = ")
            assert name not in values, f"{name} written twice"
            values[name] = value
    return values


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("listen_addresses", "'127.0.0.1,::1,10.213.5.10'"),
        ("unix_socket_directories", "'/var/run/postgresql'"),
        ("unix_socket_group", "'pgsocket'"),
        ("unix_socket_permissions", "0770"),
        ("password_encryption", "'scram-sha-256'"),
        ("ssl", "on"),
        ("ssl_min_protocol_version", "'TLSv1.2'"),
        ("ssl_cert_file", "'/etc/postgresql/15/main/tls/server.crt'"),
        ("ssl_key_file", "'/etc/postgresql/15/main/tls/server.key'"),
        ("log_connections", "on"),
        ("log_disconnections", "on"),
        ("log_statement", "'ddl'"),
    ],
)
def test_hardened_defaults(name: str, value: str) -> None:
    assert settings()[name] == value


def test_log_line_prefix_has_time_pid_user_database_client() -> None:
    prefix = settings()["log_line_prefix"]
    for code in ("%m", "%p", "%u", "%d", "%r"):
        assert code in prefix


def test_inventory_choices_are_rendered() -> None:
    values = settings(
        postgres_port=6432,
        postgres_socket={"directory": "/run/pg", "group": "dbclients", "mode": "0700"},
        postgres_tls={"ca_dir": "/srv/ca", "min_protocol": "TLSv1.3"},
        postgres_logging={"statement": "mod", "connections": False},
    )
    assert values["port"] == "6432"
    assert values["unix_socket_directories"] == "'/run/pg'"
    assert values["unix_socket_group"] == "'dbclients'"
    assert values["unix_socket_permissions"] == "0700"
    assert values["ssl_min_protocol_version"] == "'TLSv1.3'"
    assert values["log_statement"] == "'mod'"
    assert values["log_connections"] == "off"


def test_extra_settings_follow_sorted() -> None:
    values = settings(postgres_settings={"work_mem": "8MB", "max_connections": 50})
    assert values["work_mem"] == "'8MB'"
    assert values["max_connections"] == "50"
    assert list(values)[-2:] == ["max_connections", "work_mem"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "on"),
        (False, "off"),
        (10, "10"),
        (0.5, "0.5"),
        ("it's", "'it''s'"),
        ("", "''"),
    ],
)
def test_conf_value_quoting(value: str | int | float | bool, text: str) -> None:
    assert conf_value(value) == text


@pytest.mark.parametrize("major", [13, 14, 15, 16, 17, 18])
def test_every_rendered_setting_exists_in_each_supported_major(major: int) -> None:
    spec = from_host_data(
        "db1", {"postgres_listen": ["eth0"], "postgres_tls": {"ca_dir": "/srv/ca"}}
    )
    managed = managed_settings(spec, PostgresLayout(major), LISTEN)
    assert [n for n in managed if version_problem(n, major) is not None] == []


def test_15_and_17_differ_only_in_the_cluster_paths() -> None:
    spec = from_host_data(
        "db1",
        {
            "postgres_listen": ["eth0"],
            "postgres_tls": {"ca_dir": "/srv/ca"},
            "postgres_settings": {"work_mem": "8MB"},
        },
    )
    on_15 = render_settings(spec, PostgresLayout(15), LISTEN)
    on_17 = render_settings(spec, PostgresLayout(17), LISTEN)
    assert "/etc/postgresql/15/main/tls/server.crt" in on_15
    assert on_17 == on_15.replace("/etc/postgresql/15/", "/etc/postgresql/17/")


def test_debian_13_uses_postgresql_17_paths() -> None:
    layout = layout_for("db1", 13, None)
    assert layout.version == 17
    assert layout.dropin_file == "/etc/postgresql/17/main/conf.d/50-pgfortress.conf"
    assert layout.service == "postgresql@17-main"
