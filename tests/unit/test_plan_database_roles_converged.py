"""specs/example.yml against the state it leaves behind: nothing to change.

The end state is written out by hand, the way the catalog fact reads it after
the example was applied and the migrator created a few objects as app_owner.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pgfortress.catalog import (
    PUBLIC,
    CatalogObject,
    CatalogState,
    DefaultPrivilege,
    Membership,
    Privilege,
)
from pgfortress.spec.database_roles import load_database_roles

from .test_plan_database_roles_fixtures import (
    MARK,
    OWNER_ALL,
    cluster,
    database,
    default,
    grant,
    plan,
    role,
    shown,
)

EXAMPLE = Path(__file__).parents[2] / "specs" / "example.yml"
OWNER = "app_owner"


def example_cluster(version: int) -> CatalogState:
    options = version >= 16
    inherit_off = False if options else None
    inherit_on = True if options else None
    set_on = True if options else None
    roles = (
        role(OWNER, comment=f"{MARK}: owns the application's schemas and objects"),
        role(
            "app_migrator",
            login=True,
            comment=f"{MARK}: runs migrations after SET ROLE app_owner",
        ),
        role(
            "app_rw",
            login=True,
            connection_limit=50,
            settings={
                "statement_timeout": "30s",
                "idle_in_transaction_session_timeout": "60s",
                "search_path": "app",
            },
        ),
        role("app_ro", login=True, settings={"default_transaction_read_only": "on"}),
        role("reporting", login=True, valid_until="2027-12-31T00:00:00Z"),
        role(
            "authenticator",
            login=True,
            inherit=False,
            settings={"statement_timeout": "10s"},
        ),
        role("web_anon", comment=f"{MARK}: what anonymous API requests may do"),
        role("web_user", comment=f"{MARK}: what signed-in API requests may do"),
    )
    memberships = {
        Membership(OWNER, "app_migrator", False, inherit_off, set_on),
        Membership("app_ro", "reporting", False, inherit_on, set_on),
        Membership("web_anon", "authenticator", False, inherit_off, set_on),
        Membership("web_user", "authenticator", False, inherit_off, set_on),
    }
    return dataclasses.replace(
        cluster(*roles, version=version), memberships=frozenset(memberships)
    )


OBJECTS = (
    CatalogObject("table", "app", "items", OWNER),
    CatalogObject("sequence", "app", "items_id_seq", OWNER),
    CatalogObject("function", "app", "touch(p_id integer)", OWNER),
    CatalogObject("table", "api", "products", OWNER),
    CatalogObject("function", "api", "hello()", OWNER),
)


def example_privileges() -> set[Privilege]:
    logins = ("app_migrator", "app_rw", "app_ro", "reporting", "authenticator")
    held = set(OWNER_ALL)
    for login in logins:
        held |= grant("database app", login, "CONNECT")
    held |= grant("schema public", PUBLIC, "USAGE")
    held |= grant("schema public", "pg_database_owner", "USAGE", "CREATE")
    for schema in ("app", "api"):
        held |= grant(f"schema {schema}", OWNER, "USAGE", "CREATE")
    for item in OBJECTS:
        kind = item.object_type
        everything = {"table": ("SELECT", "INSERT"), "sequence": ("USAGE",)}
        owner_has = everything.get(kind, ("EXECUTE",))
        held |= grant(f"{kind} {item.schema}.{item.name}", OWNER, *owner_has)
    return held | (
        grant("schema app", "app_rw", "USAGE")
        | grant("schema app", "app_ro", "USAGE")
        | grant("schema api", "web_anon", "USAGE")
        | grant("schema api", "web_user", "USAGE")
        | grant("table app.items", "app_rw", "SELECT", "INSERT", "UPDATE", "DELETE")
        | grant("table app.items", "app_ro", "SELECT")
        | grant("sequence app.items_id_seq", "app_rw", "USAGE", "SELECT")
        | grant("function app.touch(p_id integer)", "app_rw", "EXECUTE")
        | grant("table api.products", "web_anon", "SELECT")
        | grant("table api.products", "web_user", "SELECT", "INSERT")
        | grant("function api.hello()", "web_user", "EXECUTE")
        | grant("language plpgsql", PUBLIC, "USAGE")
    )


def example_defaults() -> set[DefaultPrivilege]:
    return (
        default(
            OWNER, "app", "tables", "app_rw", "SELECT", "INSERT", "UPDATE", "DELETE"
        )
        | default(OWNER, "app", "tables", "app_ro", "SELECT")
        | default(OWNER, "app", "sequences", "app_rw", "USAGE", "SELECT")
        | default(OWNER, "api", "tables", "web_user", "SELECT", "INSERT")
        | default(OWNER, "api", "functions", "web_user", "EXECUTE")
        # The global row left by REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC.
        | default(OWNER, None, "functions", OWNER, "EXECUTE")
    )


def example_database(version: int) -> CatalogState:
    return database(
        version=version,
        schemas={"public": "pg_database_owner", "app": OWNER, "api": OWNER},
        objects=OBJECTS,
        privileges=example_privileges(),
        defaults=example_defaults(),
    )


@pytest.mark.parametrize("version", [16, 17])
def test_example_spec_on_its_own_end_state_changes_nothing(version: int) -> None:
    result = plan(
        load_database_roles(EXAMPLE),
        example_cluster(version),
        {"app": example_database(version)},
    )
    assert shown(result) == []
    assert result.reports == ()
    assert result.summary() == (
        "database roles match the spec: 8 roles, 4 memberships, 21 privileges, "
        "10 default privileges; nothing to change"
    )


def test_example_spec_before_16_changes_nothing_but_says_what_it_cannot_do() -> None:
    result = plan(
        load_database_roles(EXAMPLE), example_cluster(15), {"app": example_database(15)}
    )
    assert shown(result) == []
    assert result.reports == (
        "PostgreSQL 15 has no per-membership INHERIT: app_migrator inherits "
        "app_owner's privileges, as its own INHERIT attribute says; set inherit on "
        "roles.app_migrator to change that",
    )


def test_example_spec_on_a_fresh_server_builds_everything() -> None:
    fresh = dataclasses.replace(cluster(version=16), databases={"postgres": "postgres"})
    result = plan(load_database_roles(EXAMPLE), fresh, {"app": None})
    statements = shown(result)
    assert statements[:2] == [
        'CREATE ROLE "app_owner"',
        'CREATE ROLE "app_migrator" WITH LOGIN',
    ]
    assert (
        'GRANT "web_anon" TO "authenticator" WITH INHERIT FALSE, SET TRUE' in statements
    )
    assert (
        '[app] GRANT CONNECT ON DATABASE "app" TO "app_migrator", "app_ro", '
        '"app_rw", "authenticator", "reporting"' in statements
    )
    assert result.reports == (
        "database app: function app.touch(integer) does not exist yet; its grant "
        "is planned on the first run after it is created",
        "database app: table api.products does not exist yet; its grant is planned "
        "on the first run after it is created",
    )
