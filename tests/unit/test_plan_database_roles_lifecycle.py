"""Owners, retired roles, what is only reported, and the plan's summary."""

from __future__ import annotations

import dataclasses

import pytest

from pgfortress.catalog import PUBLIC, CatalogObject, RoleState

from .test_plan_database_roles_fixtures import (
    BASE_SPEC,
    changed,
    converged_cluster,
    converged_database,
    grant,
    plan,
    role,
    shown,
    spec,
)

REMOVE = "unmanaged: remove\n" + BASE_SPEC
ALL_TABLES = "{to: app_rw, on: all tables in schema app, privileges: [ALL]}"


def all_on_tables(version: int) -> list[str]:
    text = BASE_SPEC.replace(
        "{to: app_rw, on: all tables in schema app, privileges: [SELECT]}", ALL_TABLES
    )
    the_cluster = converged_cluster(version=version)
    state = converged_database(version)
    return shown(plan(spec(text), the_cluster, {"app": state}))


def test_all_on_tables_includes_maintain_only_from_17_on() -> None:
    # SELECT is there already, per object and by default.
    before = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    assert all_on_tables(16) == [
        "[app] GRANT INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLE "
        '"app"."items" TO "app_rw"',
        f'[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" GRANT '
        f'{before} ON TABLES TO "app_rw"',
    ]
    assert all_on_tables(17) == [
        "[app] GRANT INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, MAINTAIN "
        'ON TABLE "app"."items" TO "app_rw"',
        f'[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" GRANT '
        f'{before}, MAINTAIN ON TABLES TO "app_rw"',
    ]


def test_maintain_named_on_16_is_left_out_and_reported() -> None:
    text = BASE_SPEC.replace("privileges: [SELECT]}", "privileges: [SELECT, MAINTAIN]}")
    result = plan(spec(text), converged_cluster(), {"app": converged_database()})
    assert result.statements == ()
    assert result.reports[0].startswith("MAINTAIN on all tables in schema app for")


@pytest.mark.parametrize(
    ("database_owner", "schema_owner", "expected"),
    [
        pytest.param(
            "postgres",
            "app_owner",
            ['ALTER DATABASE "app" OWNER TO "app_owner"'],
            id="database-owner",
        ),
        pytest.param(
            "app_owner",
            "app_rw",
            [
                '[app] ALTER SCHEMA "app" OWNER TO "app_owner"',
                # The old owner held USAGE as owner; it passes to the new one.
                '[app] GRANT USAGE ON SCHEMA "app" TO "app_rw"',
            ],
            id="schema-owner",
        ),
    ],
)
def test_owners_are_set_back_to_the_spec(
    database_owner: str, schema_owner: str, expected: list[str]
) -> None:
    the_cluster = dataclasses.replace(
        converged_cluster(), databases={"postgres": "postgres", "app": database_owner}
    )
    state = converged_database()
    state = dataclasses.replace(state, schemas=state.schemas | {"app": schema_owner})
    assert shown(plan(spec(), the_cluster, {"app": state})) == expected


def test_public_schema_owned_through_pg_database_owner_counts_as_the_owners() -> None:
    text = BASE_SPEC.replace("schemas: {app: {}}", "schemas: {app: {}, public: {}}")
    result = plan(spec(text), converged_cluster(), {"app": converged_database()})
    assert result.statements == ()


# -- roles that are not in the spec -----------------------------------------

OLD = role("old_rw", login=True)
OLD_CONNECT = grant("database app", "old_rw", "CONNECT")


def test_retired_role_loses_its_privileges_then_is_dropped_last() -> None:
    state = changed(converged_database(), add=OLD_CONNECT)
    result = plan(spec(REMOVE), converged_cluster(OLD), {"app": state})
    assert shown(result) == [
        '[app] REVOKE CONNECT ON DATABASE "app" FROM "old_rw"',
        '[app] DROP ROLE "old_rw"',
    ]


def test_retired_role_is_kept_and_reported_when_unmanaged_is_report() -> None:
    result = plan(spec(), converged_cluster(OLD), {"app": converged_database()})
    assert result.statements == ()
    assert result.reports == (
        "role old_rw is no longer in the spec; pgfortress created it and keeps it "
        "because unmanaged is report",
    )


def test_retired_role_that_owns_an_object_is_not_dropped() -> None:
    state = converged_database()
    owned = CatalogObject("table", "public", "leftover", "old_rw")
    state = dataclasses.replace(state, objects=(*state.objects, owned))
    result = plan(spec(REMOVE), converged_cluster(OLD), {"app": state})
    assert result.statements == ()
    assert result.reports == (
        "role old_rw is no longer in the spec but is not dropped: it owns table "
        "public.leftover in database app; move or revoke that first",
    )


def test_roles_pgfortress_did_not_create_are_only_reported() -> None:
    bob = RoleState("bob", login=True)
    admin = RoleState("dba", login=True, superuser=True)
    probe = RoleState("pgfortress_probe", login=True)
    state = changed(converged_database(), add=grant("database app", "bob", "CONNECT"))
    result = plan(spec(REMOVE), converged_cluster(bob, admin, probe), {"app": state})
    assert result.statements == ()
    assert result.reports == (
        "database app: bob is not managed by pgfortress, so this is left alone: "
        'REVOKE CONNECT ON DATABASE "app" FROM "bob"',
        "role dba is a superuser; only postgres should be (ALTER ROLE dba "
        "NOSUPERUSER, once nothing relies on it)",
        "role bob is not in the spec and was not created by pgfortress; left alone",
        "role dba is not in the spec and was not created by pgfortress; left alone",
    )


def test_untrusted_procedural_language_usable_by_public_is_reported() -> None:
    state = converged_database()
    state = dataclasses.replace(
        state, languages=state.languages | {"plpython3u": False}
    )
    state = changed(
        state,
        add=grant("language plpython3u", PUBLIC, "USAGE")
        | grant("language c", PUBLIC, "USAGE")
        | grant("language internal", PUBLIC, "USAGE"),
    )
    result = plan(spec(), converged_cluster(), {"app": state})
    assert result.reports == (
        "database app: untrusted language plpython3u lists USAGE for PUBLIC; only "
        "superusers should write functions in it, so DROP EXTENSION plpython3u "
        "unless something needs it",
    )


def test_objects_not_created_by_the_owner_are_reported() -> None:
    state = converged_database()
    stray = CatalogObject("table", "app", "stray", "app_rw")
    state = dataclasses.replace(state, objects=(*state.objects, stray))
    result = plan(spec(), converged_cluster(), {"app": state})
    assert result.reports == (
        "database app: table app.stray is owned by app_rw; default privileges cover "
        "only objects created by app_owner, so create objects after SET ROLE "
        "app_owner",
    )


# -- the plan as a whole -------------------------------------------------------


def test_summary_counts_statements_per_place() -> None:
    the_cluster = converged_cluster(role("app_owner", comment="someone else's"))
    state = changed(converged_database(), drop=grant("schema app", "app_rw", "USAGE"))
    result = plan(spec(), the_cluster, {"app": state})
    assert result.summary() == (
        "database roles differ from the spec: 2 statements to run (1 cluster-wide, "
        "1 in database app)"
    )


def test_summary_of_a_plan_with_nothing_to_do_is_one_sentence() -> None:
    result = plan(spec(), converged_cluster(), {"app": converged_database()})
    assert result.summary() == (
        "database roles match the spec: 2 roles, 0 memberships, 3 privileges, "
        "1 default privilege; nothing to change"
    )


def test_an_existing_database_without_its_state_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="database app exists on the server"):
        plan(spec(), converged_cluster(), {"app": None})
