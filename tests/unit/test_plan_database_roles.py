"""Planning roles: attributes, passwords, settings, comments and memberships.

Each case is (spec, current state) → the exact statements as displayed. The
state is the converged state of the base spec with one thing changed, so each
case shows only the difference it is about.
"""

from __future__ import annotations

import dataclasses

import pytest

from pgfortress.catalog import CatalogState, Membership, PasswordState
from pgfortress.plan import database_roles
from pgfortress.scram import verifier_matches
from pgfortress.secrets import Secret

from .test_plan_database_roles_fixtures import (
    BASE_SPEC,
    MARK,
    cluster,
    converged_cluster,
    converged_database,
    database,
    default,
    grant,
    password,
    plan,
    role,
    scram,
    shown,
    spec,
)

MD5 = PasswordState("md5", None, "0" * 32)
RW = 'ALTER ROLE "app_rw"'


def roles_case(
    case_id: str, text: str, state: CatalogState, expected: list[str]
) -> object:
    """One table row: spec text, current cluster state, statements displayed."""
    return pytest.param(text, state, expected, id=case_id)


BASE = BASE_SPEC


def with_rw(**fields: object) -> str:
    """BASE with extra attributes on app_rw, written as YAML flow items."""
    extra = ", ".join(f"{key}: {value}" for key, value in fields.items())
    return BASE.replace("app_rw: {login: true}", f"app_rw: {{login: true, {extra}}}")


def rw_state(**attributes: object) -> CatalogState:
    return (
        converged_cluster()
        if not attributes
        else cluster(role("app_owner"), role("app_rw", login=True, **attributes))
    )


ATTRIBUTE_CASES = [
    roles_case(
        "attribute-on",
        with_rw(createdb="true"),
        rw_state(),
        [
            f"{RW} WITH CREATEDB",
        ],
    ),
    roles_case(
        "attributes-off-and-forbidden-ones-taken-away",
        BASE,
        rw_state(createdb=True, superuser=True, replication=True, bypassrls=True),
        [
            f"{RW} WITH NOCREATEDB NOSUPERUSER NOREPLICATION NOBYPASSRLS",
        ],
    ),
    roles_case(
        "login-taken-away-also-drops-password",
        BASE.replace("app_rw: {login: true}", "app_rw: {}"),
        rw_state(),
        [
            f"{RW} WITH NOLOGIN",
            f"{RW} PASSWORD NULL",
        ],
    ),
    roles_case(
        "noinherit-and-createrole",
        with_rw(inherit="false", createrole="true"),
        rw_state(),
        [f"{RW} WITH NOINHERIT CREATEROLE"],
    ),
    roles_case(
        "connection-limit-and-expiry-set",
        with_rw(connection_limit=5, valid_until='"2030-01-01T00:00:00+02:00"'),
        rw_state(),
        [
            f"{RW} WITH CONNECTION LIMIT 5 VALID UNTIL '2029-12-31T22:00:00Z'",
        ],
    ),
    roles_case(
        "limit-and-expiry-back-to-none",
        BASE,
        rw_state(connection_limit=5, valid_until="2030-01-01T00:00:00Z"),
        [
            f"{RW} WITH CONNECTION LIMIT -1 VALID UNTIL 'infinity'",
        ],
    ),
    roles_case(
        "infinity-matches-no-expiry", with_rw(valid_until="infinity"), rw_state(), []
    ),
    roles_case(
        "same-expiry-written-in-another-zone",
        with_rw(valid_until='"2030-01-01T02:00:00+02:00"'),
        rw_state(valid_until="2030-01-01T00:00:00Z"),
        [],
    ),
]


SETTINGS_CASES = [
    roles_case(
        "setting-added",
        with_rw(settings="{statement_timeout: 30s}"),
        rw_state(),
        [f"{RW} SET \"statement_timeout\" = '30s'"],
    ),
    roles_case(
        "setting-changed",
        with_rw(settings="{statement_timeout: 30s}"),
        rw_state(settings={"statement_timeout": "1min"}),
        [f"{RW} SET \"statement_timeout\" = '30s'"],
    ),
    roles_case(
        "setting-not-in-spec-reset",
        BASE,
        rw_state(settings={"work_mem": "64MB"}),
        [f'{RW} RESET "work_mem"'],
    ),
    roles_case(
        "same-settings-nothing",
        with_rw(settings="{statement_timeout: 30s, jit: off, lock_timeout: 500}"),
        rw_state(
            settings={"statement_timeout": "30s", "jit": "off", "lock_timeout": "500"}
        ),
        [],
    ),
    roles_case(
        "search-path-as-the-server-stores-it",
        with_rw(settings="""{search_path: '"$user", app'}"""),
        rw_state(settings={"search_path": '"$user", app'}),
        [],
    ),
    roles_case(
        "search-path-elements-are-literals",
        with_rw(settings="{search_path: 'app, public'}"),
        rw_state(),
        [f"{RW} SET \"search_path\" = 'app', 'public'"],
    ),
    roles_case(
        "extension-setting",
        with_rw(settings="{pgrst.db_schemas: api}"),
        rw_state(),
        [f'{RW} SET "pgrst"."db_schemas" = \'api\''],
    ),
]


COMMENT_CASES = [
    roles_case(
        "comment-marks-the-role-as-managed",
        BASE,
        cluster(role("app_owner", comment="owner"), role("app_rw", login=True)),
        [f"COMMENT ON ROLE \"app_owner\" IS '{MARK}'"],
    ),
    roles_case(
        "comment-text-follows-the-mark",
        BASE.replace("app_owner: {}", 'app_owner: {comment: "it\'s the owner"}'),
        converged_cluster(),
        [f"COMMENT ON ROLE \"app_owner\" IS '{MARK}: it''s the owner'"],
    ),
]


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [*ATTRIBUTE_CASES, *SETTINGS_CASES, *COMMENT_CASES],
)
def test_role_attributes_settings_and_comments_both_ways(
    text: str, state: CatalogState, expected: list[str]
) -> None:
    result = plan(spec(text), state, {"app": converged_database()})
    assert shown(result) == expected


def test_missing_role_is_created_with_only_what_differs_from_create_role() -> None:
    state = cluster(role("app_owner"))
    result = plan(
        spec(with_rw(connection_limit=3)), state, {"app": converged_database()}
    )
    assert shown(result) == [
        'CREATE ROLE "app_rw" WITH LOGIN CONNECTION LIMIT 3',
        f"{RW} PASSWORD '********'",
        f"COMMENT ON ROLE \"app_rw\" IS '{MARK}'",
    ]


# -- passwords ---------------------------------------------------------------


def test_a_password_that_already_matches_is_not_set_again() -> None:
    # The stored verifier is recomputed with its own salt and iteration count.
    result = plan(spec(), converged_cluster(), {"app": converged_database()})
    assert result.statements == ()


@pytest.mark.parametrize(
    ("stored", "reported"),
    [
        pytest.param(None, False, id="no-password-yet"),
        pytest.param(scram(Secret("an old password")), False, id="other-password"),
        pytest.param(MD5, True, id="md5-replaced-and-reported"),
        pytest.param(PasswordState("other", None, "0" * 32), False, id="plain-text"),
    ],
)
def test_a_different_or_weak_password_is_replaced_by_a_scram_verifier(
    stored: PasswordState | None, reported: bool
) -> None:
    state = cluster(role("app_owner"), role("app_rw", login=True, password=stored))
    result = plan(spec(), state, {"app": converged_database()})
    assert shown(result) == [f"{RW} PASSWORD '********'"]
    assert verifier_matches(result.statements[0].sql.split("'")[1], password("app_rw"))
    md5_lines = [r for r in result.reports if "md5" in r]
    assert bool(md5_lines) == reported


def test_no_verifier_appears_in_display_repr_or_str() -> None:
    state = cluster(role("app_owner"), role("app_rw", login=True, password=None))
    result = plan(spec(), state, {"app": converged_database()})
    verifier = result.statements[0].sql.split("'")[1]
    assert verifier.startswith("SCRAM-SHA-256$4096:")
    for text in (repr(result), str(result), result.summary(), *result.reports):
        assert verifier not in text
        assert "SCRAM-SHA-256" not in text
    assert verifier not in result.statements[0].display
    assert verifier not in repr(result.statements[0])
    assert verifier not in str(result.statements[0])


def test_a_login_role_without_a_password_is_reported_and_left_alone() -> None:
    the_spec = spec()
    result = database_roles.plan_database_roles(
        the_spec, converged_cluster(), {"app": converged_database()}, {}
    )
    assert result.statements == ()
    assert result.reports == (
        "no password was given for login role app_rw; its password is left as it is",
    )


@pytest.mark.parametrize(("version", "warned"), [(15, True), (16, False), (17, False)])
def test_createrole_before_16_is_reported_as_the_power_it_is(
    version: int, warned: bool
) -> None:
    the_spec = spec(with_rw(createrole="true"))
    state = rw_state(createrole=True)
    state = dataclasses.replace(state, version_num=version * 10000)
    result = plan(the_spec, state, {"app": converged_database(version)})
    warnings = [line for line in result.reports if "createrole" in line]
    if not warned:
        assert warnings == []
        return
    assert warnings == [
        "roles.app_rw: createrole on PostgreSQL 15 lets app_rw alter, drop and "
        "grant any database role that is not a superuser, pg_execute_server_program "
        "(programs run as the postgres OS user) included; PostgreSQL 16 limits it "
        "to the roles it administers; set createrole: false on roles.app_rw unless "
        "it must manage database roles"
    ]


# -- memberships -------------------------------------------------------------

MEMBERS = """
roles:
  app_owner: {}
  app_rw: {login: true}
  app_migrator:
    login: true
    member_of: [{role: app_owner, set: true, inherit: false}]
  reporting: {login: true, member_of: [app_rw]}
databases:
  app:
    owner: app_owner
    schemas: {app: {}}
"""
GROUP_ROLES = (role("app_migrator", login=True), role("reporting", login=True))


def member(
    role_name: str,
    member_name: str,
    *,
    admin: bool = False,
    inherit: bool | None = True,
    set_option: bool | None = True,
) -> Membership:
    return Membership(role_name, member_name, admin, inherit, set_option)


CONVERGED_16 = (
    member("app_owner", "app_migrator", inherit=False),
    member("app_rw", "reporting"),
)
CONVERGED_15 = (
    member("app_owner", "app_migrator", inherit=None, set_option=None),
    member("app_rw", "reporting", inherit=None, set_option=None),
)


def members(
    version: int, *rows: Membership, unmanaged: str = "report"
) -> tuple[CatalogState, str]:
    state = converged_cluster(*GROUP_ROLES, version=version)
    return dataclasses.replace(state, memberships=frozenset(rows)), unmanaged


MEMBERSHIP_CASES = [
    pytest.param(*members(16, *CONVERGED_16), [], id="16-converged"),
    pytest.param(
        *members(16),
        [
            'GRANT "app_owner" TO "app_migrator" WITH INHERIT FALSE, SET TRUE',
            'GRANT "app_rw" TO "reporting" WITH INHERIT TRUE, SET TRUE',
        ],
        id="16-missing-with-explicit-options",
    ),
    pytest.param(
        *members(15),
        [
            'GRANT "app_owner" TO "app_migrator"',
            'GRANT "app_rw" TO "reporting"',
        ],
        id="15-missing-without-options",
    ),
    pytest.param(*members(15, *CONVERGED_15), [], id="15-converged"),
    pytest.param(
        *members(16, CONVERGED_16[0], member("app_rw", "reporting", inherit=False)),
        [
            'GRANT "app_rw" TO "reporting" WITH INHERIT TRUE',
        ],
        id="16-member-that-inherits-nothing-is-fixed",
    ),
    pytest.param(
        *members(
            16,
            member("app_owner", "app_migrator", inherit=False, set_option=False),
            CONVERGED_16[1],
        ),
        [
            'GRANT "app_owner" TO "app_migrator" WITH SET TRUE',
        ],
        id="16-noinherit-member-that-cannot-set-role-is-fixed",
    ),
    pytest.param(
        *members(
            16,
            member("app_owner", "app_migrator", admin=True, inherit=False),
            CONVERGED_16[1],
        ),
        [
            'REVOKE ADMIN OPTION FOR "app_owner" FROM "app_migrator"',
        ],
        id="16-admin-option-taken-away",
    ),
    pytest.param(
        *members(16, *CONVERGED_16, member("app_owner", "app_rw"), unmanaged="remove"),
        [
            'REVOKE "app_owner" FROM "app_rw"',
        ],
        id="membership-not-in-spec-removed",
    ),
    pytest.param(
        *members(16, *CONVERGED_16, member("app_owner", "app_rw")),
        [],
        id="membership-not-in-spec-only-reported",
    ),
    pytest.param(
        *members(16, *CONVERGED_16, member("app_owner", "postgres")),
        [],
        id="memberships-of-postgres-never-touched",
    ),
]


@pytest.mark.parametrize(("state", "unmanaged", "expected"), MEMBERSHIP_CASES)
def test_memberships_both_ways_per_server_version(
    state: CatalogState, unmanaged: str, expected: list[str]
) -> None:
    text = f"unmanaged: {unmanaged}\n{MEMBERS}"
    result = plan(spec(text), state, {"app": members_database(state.major)})
    assert shown(result) == expected


def members_database(version: int) -> CatalogState:
    # Only the migrator needs CONNECT: it acts as app_owner, the owner.
    return database(
        version=version,
        schemas={"public": "pg_database_owner", "app": "app_owner"},
        privileges=grant("database app", "app_migrator", "CONNECT"),
        defaults=default("app_owner", None, "functions", "app_owner", "EXECUTE"),
    )


def test_membership_not_in_spec_is_reported_with_the_statement_that_removes_it() -> (
    None
):
    state, _ = members(16, *CONVERGED_16, member("app_owner", "app_rw"))
    result = plan(spec(MEMBERS), state, {"app": members_database(16)})
    assert result.reports == (
        'not in the spec, kept because unmanaged is report: REVOKE "app_owner" '
        'FROM "app_rw"',
    )


def test_before_16_an_inherit_option_that_cannot_be_honoured_is_reported() -> None:
    state, _ = members(15, *CONVERGED_15)
    result = plan(spec(MEMBERS), state, {"app": members_database(15)})
    assert result.statements == ()
    assert result.reports == (
        "PostgreSQL 15 has no per-membership INHERIT: app_migrator inherits "
        "app_owner's privileges, as its own INHERIT attribute says; set inherit on "
        "roles.app_migrator to change that",
    )
