"""Planning databases, schemas, grants and default privileges, both ways.

Includes the failures operators report with other tools, each as a named
test, and a hand-built end state on which a realistic spec plans nothing.
"""

from __future__ import annotations

import dataclasses

import pytest

from pgfortress.catalog import (
    PUBLIC,
    CatalogObject,
    CatalogState,
    Membership,
    Privilege,
)

from .test_plan_database_roles_fixtures import (
    BASE_SPEC,
    changed,
    converged_cluster,
    converged_database,
    database,
    default,
    grant,
    plan,
    role,
    shown,
    spec,
    table,
)

NEW_DATABASE = [
    'CREATE DATABASE "app" OWNER "app_owner"',
    '[app] REVOKE ALL ON DATABASE "app" FROM PUBLIC',
    '[app] GRANT CONNECT ON DATABASE "app" TO "app_rw"',
]
NEW_SCHEMA = [
    '[app] CREATE SCHEMA "app" AUTHORIZATION "app_owner"',
    '[app] GRANT USAGE ON SCHEMA "app" TO "app_rw"',
    '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" GRANT '
    'SELECT ON TABLES TO "app_rw"',
    '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" REVOKE EXECUTE ON '
    "FUNCTIONS FROM PUBLIC",
]


def new_database_plan(version: int, text: str = BASE_SPEC) -> list[str]:
    state = dataclasses.replace(
        converged_cluster(version=version), databases={"postgres": "postgres"}
    )
    return shown(plan(spec(text), state, {"app": None}))


@pytest.mark.parametrize("version", [15, 16, 17])
def test_new_database_from_15_on_public_schema_already_refuses_create(
    version: int,
) -> None:
    assert new_database_plan(version) == NEW_DATABASE + NEW_SCHEMA


@pytest.mark.parametrize("version", [13, 14])
def test_new_database_before_15_takes_create_on_public_away_from_public(
    version: int,
) -> None:
    revoke = "[app] REVOKE CREATE ON SCHEMA public FROM PUBLIC"
    assert new_database_plan(version) == [*NEW_DATABASE, revoke, *NEW_SCHEMA]


# -- the failures operators report with other tools ---------------------------

PUBLIC_SCHEMA_SPEC = """
roles:
  app_owner: {}
  app_rw: {login: true}
databases:
  app:
    owner: app_owner
    schemas: {public: {}}
    grants:
      - {to: app_rw, on: database, privileges: [ALL]}
      - {to: app_rw, on: schema public, privileges: [USAGE, CREATE]}
"""


PUBLIC_SCHEMA_15 = [
    'CREATE DATABASE "app" OWNER "app_owner"',
    '[app] REVOKE ALL ON DATABASE "app" FROM PUBLIC',
    '[app] GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "app" TO "app_rw"',
    '[app] GRANT USAGE, CREATE ON SCHEMA "public" TO "app_rw"',
    '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" REVOKE EXECUTE ON '
    "FUNCTIONS FROM PUBLIC",
]
PUBLIC_SCHEMA_14 = [
    *PUBLIC_SCHEMA_15[:3],
    "[app] REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    # Before 15 the bootstrap superuser owns public; the spec gives it back.
    '[app] ALTER SCHEMA "public" OWNER TO "app_owner"',
    *PUBLIC_SCHEMA_15[3:],
]


@pytest.mark.parametrize(
    ("version", "expected"),
    [(14, PUBLIC_SCHEMA_14), (15, PUBLIC_SCHEMA_15), (16, PUBLIC_SCHEMA_15)],
)
def test_create_in_public_is_granted_explicitly_never_left_to_public(
    version: int, expected: list[str]
) -> None:
    # "permission denied for schema public" on 15 for a role with ALL on the
    # database: CREATE on a database allows schemas, not tables in public.
    # The spec asks for CREATE on the schema, and the plan grants it the same
    # way on every version instead of relying on what PUBLIC had before 15.
    assert new_database_plan(version, PUBLIC_SCHEMA_SPEC) == expected


def test_default_privileges_set_without_for_role_are_not_taken_for_the_owners() -> None:
    # ALTER DEFAULT PRIVILEGES run as postgres without FOR ROLE only covers
    # tables postgres creates; the owner's new tables would stay unreadable.
    state = converged_database()
    without_for_role = default("postgres", "app", "tables", "app_rw", "SELECT")
    owners = default("app_owner", "app", "tables", "app_rw", "SELECT")
    state = dataclasses.replace(
        state, default_privileges=(state.default_privileges - owners) | without_for_role
    )
    result = plan(spec(), converged_cluster(), {"app": state})
    assert shown(result) == [
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" GRANT '
        'SELECT ON TABLES TO "app_rw"'
    ]


def test_default_privileges_cover_both_the_schema_owner_and_the_database_owner() -> (
    None
):
    text = BASE_SPEC.replace("schemas: {app: {}}", "schemas: {app: {owner: app_rw}}")
    text = text.replace("{to: app_rw, on: all", "{to: [app_rw, app_owner], on: all")
    state = dataclasses.replace(converged_database(), default_privileges=frozenset())
    state = dataclasses.replace(state, schemas={"app": "app_rw"}, objects=())
    result = plan(spec(text), converged_cluster(), {"app": state})
    assert shown(result) == [
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" GRANT '
        'SELECT ON TABLES TO "app_rw"',
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_rw" IN SCHEMA "app" GRANT '
        'SELECT ON TABLES TO "app_owner"',
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" REVOKE EXECUTE ON '
        "FUNCTIONS FROM PUBLIC",
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_rw" REVOKE EXECUTE ON '
        "FUNCTIONS FROM PUBLIC",
    ]


API_SPEC = """
roles:
  app_owner: {}
  app_rw: {login: true}
  authenticator: {login: true, inherit: false}
  web_anon: {}
api: {authenticator: authenticator, anonymous: web_anon}
databases:
  app:
    owner: app_owner
    schemas: {app: {}, api: {}}
    grants:
      - {to: app_rw, on: schema app, privileges: [USAGE]}
      - {to: app_rw, on: all tables in schema app, privileges: [SELECT]}
      - {to: web_anon, on: schema api, privileges: [USAGE]}
"""


def test_revoking_connect_from_public_never_locks_out_the_gateway() -> None:
    roles = (role("authenticator", login=True, inherit=False), role("web_anon"))
    memberships = [Membership("web_anon", "authenticator", False, False, True)]
    state = dataclasses.replace(
        converged_cluster(*roles), memberships=frozenset(memberships)
    )
    app = changed(
        converged_database(),
        add=grant("database app", PUBLIC, "CONNECT", "TEMPORARY")
        | grant("schema api", "app_owner", "USAGE", "CREATE")
        | grant("schema api", "web_anon", "USAGE"),
    )
    app = dataclasses.replace(app, schemas=app.schemas | {"api": "app_owner"})
    result = plan(spec(API_SPEC), state, {"app": app})
    assert shown(result) == [
        '[app] REVOKE ALL ON DATABASE "app" FROM PUBLIC',
        '[app] GRANT CONNECT ON DATABASE "app" TO "authenticator"',
    ]


# -- grants and revokes ------------------------------------------------------

ITEMS = "table app.items"
REMOVE = "unmanaged: remove\n" + BASE_SPEC


def drift_case(
    case_id: str,
    add: set[Privilege] | None = None,
    expected: list[str] | None = None,
    *,
    text: str = REMOVE,
    objects: tuple[CatalogObject, ...] = (),
    drop: set[Privilege] | None = None,
    reports: int = 0,
) -> object:
    state = changed(converged_database(), add or set(), drop or set())
    state = dataclasses.replace(state, objects=state.objects + objects)
    return pytest.param(text, state, expected or [], reports, id=case_id)


ORDERS = CatalogObject("table", "app", "orders", "app_owner")
AUDIT = CatalogObject("table", "app", "audit", "app_owner")
TOUCH = CatalogObject("function", "app", "touch(p_id integer)", "app_owner")
OUTSIDE = CatalogObject("table", "public", "notes", "app_owner")

DRIFT_CASES = [
    drift_case(
        "new-tables-granted-in-one-statement",
        objects=(ORDERS, AUDIT),
        expected=[
            '[app] GRANT SELECT ON TABLE "app"."audit", "app"."orders" TO "app_rw"'
        ],
    ),
    drift_case(
        "missing-schema-usage",
        drop=grant("schema app", "app_rw", "USAGE"),
        expected=['[app] GRANT USAGE ON SCHEMA "app" TO "app_rw"'],
    ),
    drift_case(
        "extra-privilege-removed",
        add=grant(ITEMS, "app_rw", "DELETE", "UPDATE"),
        expected=['[app] REVOKE UPDATE, DELETE ON TABLE "app"."items" FROM "app_rw"'],
    ),
    drift_case(
        "extra-privilege-only-reported",
        add=grant(ITEMS, "app_rw", "DELETE"),
        text=BASE_SPEC,
        reports=1,
    ),
    drift_case(
        "grant-option-not-in-spec-taken-back",
        add=grant(ITEMS, "app_rw", "SELECT", grantable=True),
        drop=grant(ITEMS, "app_rw", "SELECT"),
        expected=[
            "[app] REVOKE GRANT OPTION FOR SELECT ON TABLE "
            '"app"."items" FROM "app_rw" CASCADE'
        ],
    ),
    drift_case(
        "grant-option-asked-for",
        text=REMOVE.replace(
            "privileges: [SELECT]}", "privileges: [SELECT], with_grant_option: true}"
        ),
        expected=[
            '[app] GRANT SELECT ON TABLE "app"."items" TO "app_rw" WITH GRANT OPTION',
            '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" '
            'GRANT SELECT ON TABLES TO "app_rw" WITH GRANT OPTION',
        ],
    ),
    drift_case(
        "public-execute-on-functions-always-revoked",
        objects=(TOUCH,),
        add=grant("function app.touch(p_id integer)", PUBLIC, "EXECUTE"),
        text=BASE_SPEC,
        expected=[
            '[app] REVOKE EXECUTE ON ROUTINE "app"."touch"(p_id integer) FROM PUBLIC'
        ],
    ),
    drift_case(
        "public-select-follows-unmanaged",
        add=grant(ITEMS, PUBLIC, "SELECT"),
        expected=['[app] REVOKE SELECT ON TABLE "app"."items" FROM PUBLIC'],
    ),
    drift_case(
        "role-not-managed-only-reported-even-with-remove",
        add=grant(ITEMS, "bob", "SELECT"),
        reports=1,
    ),
    drift_case(
        "outside-managed-schemas-left-alone",
        objects=(OUTSIDE,),
        add=grant("table public.notes", "app_rw", "SELECT", "DELETE"),
    ),
    drift_case(
        "connect-nobody-needs-removed",
        add=grant("database app", "web_anon", "CONNECT"),
        text=REMOVE.replace(
            "app_rw: {login: true}", "app_rw: {login: true}\n  web_anon: {}"
        ),
        expected=['[app] REVOKE CONNECT ON DATABASE "app" FROM "web_anon"'],
    ),
]


@pytest.mark.parametrize(("text", "state", "expected", "reports"), DRIFT_CASES)
def test_grants_and_revokes_compared_per_object(
    text: str, state: CatalogState, expected: list[str], reports: int
) -> None:
    extra = (role("web_anon"),) if "web_anon" in text else ()
    result = plan(spec(text), converged_cluster(*extra), {"app": state})
    assert shown(result) == expected
    drift = [r for r in result.reports if not r.startswith("role bob")]
    assert len(drift) == reports


def test_unwanted_default_privilege_removed_with_for_role() -> None:
    state = converged_database()
    extra = default("app_owner", "app", "tables", "app_rw", "INSERT")
    state = dataclasses.replace(
        state, default_privileges=state.default_privileges | extra
    )
    result = plan(spec(REMOVE), converged_cluster(), {"app": state})
    assert shown(result) == [
        '[app] ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA "app" REVOKE '
        'INSERT ON TABLES FROM "app_rw"'
    ]


def test_named_function_matches_the_catalog_signature_with_argument_names() -> None:
    text = BASE_SPEC + (
        "      - {to: app_rw, on: 'function app.touch(int)', privileges: [EXECUTE]}\n"
        "      - {to: app_rw, on: table app.missing, privileges: [SELECT]}\n"
    )
    state = dataclasses.replace(
        converged_database(), objects=(table("app", "items"), TOUCH)
    )
    result = plan(spec(text), converged_cluster(), {"app": state})
    assert shown(result) == [
        '[app] GRANT EXECUTE ON ROUTINE "app"."touch"(p_id integer) TO "app_rw"'
    ]
    assert result.reports == (
        "database app: table app.missing does not exist yet; its grant is planned "
        "on the first run after it is created",
    )


def test_odd_identifiers_are_quoted() -> None:
    text = (
        "roles:\n"
        "  app_owner: {}\n"
        "  app_rw: {login: true}\n"
        "databases:\n"
        "  app-db:\n"
        "    owner: app_owner\n"
        "    schemas: {Sales Data: {}}\n"
        "    grants:\n"
        "      - to: app_rw\n"
        '        on: \'table "Sales Data"."Q1 ""totals"""\'\n'
        "        privileges: [SELECT]\n"
    )
    odd = CatalogObject("table", "Sales Data", 'Q1 "totals"', "app_owner")
    state = database(
        "app-db",
        schemas={"public": "pg_database_owner", "Sales Data": "app_owner"},
        objects=[odd],
        privileges=grant("database app-db", "app_rw", "CONNECT"),
        defaults=default("app_owner", None, "functions", "app_owner", "EXECUTE"),
    )
    the_cluster = dataclasses.replace(
        converged_cluster(), databases={"postgres": "postgres", "app-db": "x"}
    )
    result = plan(spec(text), the_cluster, {"app-db": state})
    assert shown(result) == [
        'ALTER DATABASE "app-db" OWNER TO "app_owner"',
        '[app-db] GRANT SELECT ON TABLE "Sales Data"."Q1 ""totals""" TO "app_rw"',
    ]
