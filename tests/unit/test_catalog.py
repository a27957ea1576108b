"""The catalog query and the typed state parsed from a real server's answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgfortress.catalog import PUBLIC, Privilege, catalog_query, parse_catalog

DATA = Path(__file__).parent / "data"


@pytest.fixture
def fresh15() -> str:
    # Captured from a lab host right after deploys/postgres.py (PostgreSQL 15).
    return (DATA / "catalog_pg15_fresh.json").read_text()


def test_membership_options_only_from_postgresql_16() -> None:
    assert "m.inherit_option" not in catalog_query(150020)
    assert "m.inherit_option" in catalog_query(160000)
    assert "m.set_option" in catalog_query(170002)


def test_query_reads_no_password_verifier() -> None:
    query = catalog_query(170000)
    assert "md5(r.rolpassword)" in query
    assert "'password', r.rolpassword" not in query
    assert "split_part(r.rolpassword, '$', 2)" in query


def test_fresh_server_state(fresh15: str) -> None:
    state = parse_catalog(fresh15)
    assert state.major == 15
    assert state.database == "postgres"
    assert state.roles["postgres"].superuser
    assert state.schemas == {"public": "pg_database_owner"}
    probe = state.roles["pgfortress_probe"]
    assert (probe.login, probe.inherit, probe.connection_limit) == (True, False, 5)
    assert probe.password is not None
    assert probe.password.kind == "scram"
    assert (probe.password.salt_and_iterations or "").startswith("4096:")


def test_implicit_default_privileges_are_visible(fresh15: str) -> None:
    privileges = parse_catalog(fresh15).privileges
    connect = Privilege("database", None, "postgres", PUBLIC, "CONNECT")
    assert connect in privileges
    # PostgreSQL 15 no longer gives PUBLIC CREATE on the public schema.
    create = Privilege("schema", None, "public", PUBLIC, "CREATE")
    assert create not in privileges
    assert Privilege("schema", None, "public", PUBLIC, "USAGE") in privileges


def test_settings_split_into_name_and_value(fresh15: str) -> None:
    doc = json.loads(fresh15)
    doc["roles"][0]["settings"] = ["statement_timeout=30s", "search_path=app, public"]
    state = parse_catalog(json.dumps(doc))
    role = state.roles[doc["roles"][0]["name"]]
    assert role.settings == {"statement_timeout": "30s", "search_path": "app, public"}


def test_default_privilege_types_are_named(fresh15: str) -> None:
    doc = json.loads(fresh15)
    doc["default_privileges"] = [
        {
            "owner": "app_owner",
            "schema": "app",
            "object_type": "r",
            "grantee": "app_ro",
            "privilege": "SELECT",
            "grantable": False,
        }
    ]
    (default,) = parse_catalog(json.dumps(doc)).default_privileges
    assert default.object_type == "tables"
    assert default.schema == "app"
