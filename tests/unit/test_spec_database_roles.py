"""The database roles spec: what it accepts, and how it says what is wrong.

Every bad input must name the file and line, the key, and the fix.
"""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from pgfortress.errors import SpecError
from pgfortress.spec.database_roles import (
    DatabaseRolesSpec,
    load_database_roles,
    parse_database_roles,
)
from pgfortress.spec.grant_targets import GrantTarget, parse_target

REPO = Path(__file__).parents[2]


def parse(text: str) -> DatabaseRolesSpec:
    return parse_database_roles(textwrap.dedent(text), "specs/lab.yml")


@pytest.mark.parametrize("name", ["example.yml", "lab.yml"])
def test_shipped_specs_are_valid(name: str) -> None:
    spec = load_database_roles(REPO / "specs" / name)
    assert "app_owner" in spec.roles


def test_a_spec_file_is_parsed_once_per_text(tmp_path: Path) -> None:
    # Every host of a run loads the same file: one parse serves them all.
    path = tmp_path / "roles.yml"
    text = (REPO / "specs" / "lab.yml").read_text()
    path.write_text(text)
    first = load_database_roles(path)
    assert load_database_roles(path) is first
    path.write_text(text.replace("app_owner", "app_keeper"))
    changed = load_database_roles(path)
    assert "app_keeper" in changed.roles
    assert "app_owner" not in changed.roles


def test_reference_shows_the_example_as_it_is() -> None:
    reference = (REPO / "docs" / "reference" / "database-roles.md").read_text()
    example = (REPO / "specs" / "example.yml").read_text()
    assert f"```yaml\n{example}```" in reference


def test_defaults_and_short_forms() -> None:
    spec = parse(
        """
        roles:
          app_owner:
          app_ro: {login: true}
          reporting: {login: true, member_of: app_ro}
        databases:
          app:
            owner: app_owner
            schemas: {app: }
            grants:
              - {to: app_ro, on: schema app, privileges: usage}
              - {to: app_ro, on: database, privileges: [connect, temp]}
        """
    )
    owner = spec.roles["app_owner"]
    assert (owner.login, owner.inherit, owner.connection_limit) == (False, True, -1)
    assert spec.unmanaged == "report"
    (membership,) = spec.roles["reporting"].member_of
    assert (membership.role, membership.admin, membership.set) == (
        "app_ro",
        False,
        True,
    )
    assert membership.inherit is None
    grants = spec.databases["app"].grants
    assert grants[0].to == ("app_ro",)
    assert grants[0].privileges == ("USAGE",)
    assert grants[1].privileges == ("CONNECT", "TEMPORARY")
    assert spec.databases["app"].schema_owner("app") == "app_owner"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("2027-12-31T00:00:00Z", "2027-12-31T00:00:00Z"),  # YAML makes a datetime
        ('"2027-12-31T02:00:00+02:00"', "2027-12-31T00:00:00Z"),
        ('"2027-12-31 00:00:00.75Z"', "2027-12-31T00:00:00Z"),
        ("infinity", "infinity"),
    ],
)
def test_valid_until_is_stored_in_utc(written: str, stored: str) -> None:
    spec = parse(f"roles:\n  r: {{login: true, valid_until: {written}}}\n")
    assert spec.roles["r"].valid_until == stored


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("database", GrantTarget("database")),
        ("Schema App", GrantTarget("schema", name="app")),
        ('schema "App"', GrantTarget("schema", name="App")),
        ("table app.items", GrantTarget("table", "app", "items")),
        ('table "Sales Data"."Q1"', GrantTarget("table", "Sales Data", "Q1")),
        ("sequence app.items_id_seq", GrantTarget("sequence", "app", "items_id_seq")),
        (
            "function app.touch(int, varchar[], timestamptz)",
            GrantTarget(
                "function",
                "app",
                "touch",
                ("integer", "character varying[]", "timestamp with time zone"),
            ),
        ),
        ("function api.hello()", GrantTarget("function", "api", "hello")),
        (
            "all tables in schema app",
            GrantTarget("table", "app", all_in_schema=True),
        ),
        (
            "ALL FUNCTIONS IN SCHEMA api",
            GrantTarget("function", "api", all_in_schema=True),
        ),
    ],
)
def test_on_grammar(text: str, target: GrantTarget) -> None:
    assert parse_target(text) == target
    assert parse_target(str(target)) == target


def test_all_privileges_expand_per_server_version() -> None:
    spec = parse(
        """
        roles: {o: {}, r: {}}
        databases:
          app:
            owner: o
            schemas: {app: {}}
            grants: [{to: r, on: all tables in schema app, privileges: [ALL]}]
        """
    )
    (grant,) = spec.databases["app"].grants
    assert "MAINTAIN" not in grant.expanded(16)
    assert grant.expanded(17)[-1] == "MAINTAIN"
    assert len(grant.expanded(16)) == 7


def test_a_missing_file_names_the_inventory_key(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="postgres_database_roles"):
        load_database_roles(tmp_path / "nope.yml")


def test_a_literal_password_is_never_repeated_in_the_error() -> None:
    with pytest.raises(SpecError) as caught:
        parse("roles:\n  r: {login: true, password: 8675309}\n")
    assert "8675309" not in str(caught.value)
    assert "write env:VARIABLE or file:" in str(caught.value)


def test_every_problem_is_reported_in_file_order() -> None:
    with pytest.raises(SpecError) as caught:
        parse("roles:\n  a: {logn: true}\n  b: {login: maybe}\n")
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "specs/lab.yml:2",
        "specs/lab.yml:3",
    ]


ROLES = """
roles:
  app_owner: {}
  app_rw: {login: true}
  app_ro: {login: true}
  authenticator: {login: true, inherit: false}
  web_anon: {}
  web_user: {}
api: {authenticator: authenticator, anonymous: web_anon, roles: [web_user]}
"""
DATABASE = """
databases:
  app:
    owner: app_owner
    schemas: {app: {}, api: {}}
    grants:
"""


def with_role(line: str) -> str:
    """ROLES with one more role, written on line 9."""
    return ROLES.replace("api:", f"{line}\napi:")


def with_grants(*lines: str) -> str:
    """ROLES and one database with these grant lines (line 16 onwards)."""
    return ROLES + DATABASE + "".join(f"      - {line}\n" for line in lines)


def bad(case_id: str, text: str, line: int, key: str, fix: str) -> object:
    return pytest.param(text, line, key, fix, id=case_id)


BAD_INPUTS = [
    bad(
        "unknown-role-in-membership",
        with_role("  reporting: {login: true, member_of: [app_r0]}"),
        9,
        "roles.reporting.member_of[0]",
        "unknown role 'app_r0'; declare it under roles: or use one of app_ro",
    ),
    bad(
        "unknown-role-in-grant",
        with_grants("{to: [app_rw, app_rx], on: schema app, privileges: [USAGE]}"),
        16,
        "databases.app.grants[0].to[1]",
        "declare it under roles: or use one of app_ro, app_rw",
    ),
    bad(
        "unknown-api-role",
        ROLES.replace("roles: [web_user]", "roles: [web_usr]"),
        9,
        "api.roles[0]",
        "use one of web_user",
    ),
    bad(
        "unknown-database-owner",
        ROLES + DATABASE.replace("owner: app_owner", "owner: app_ownr"),
        13,
        "databases.app.owner",
        "use one of app_owner",
    ),
    bad(
        "unknown-schema-owner",
        ROLES + DATABASE.replace("api: {}", "api: {owner: nobody}"),
        14,
        "databases.app.schemas.api.owner",
        "declare it under roles:",
    ),
    bad(
        "membership-cycle",
        "roles:\n  a: {member_of: [b]}\n  b: {member_of: [c]}\n  c: {member_of: [a]}\n",
        2,
        "roles.a.member_of[0]",
        "membership cycle a → b → c → a; a role cannot contain itself, remove one",
    ),
    bad(
        "member-of-itself",
        "roles:\n  a: {}\n  b:\n    member_of:\n      - a\n      - b\n",
        6,
        "roles.b.member_of[1]",
        "membership cycle b → b",
    ),
    bad(
        "cycle-through-the-api",
        ROLES.replace("web_anon: {}", "web_anon: {member_of: [authenticator]}"),
        7,
        "roles.web_anon.member_of[0]",
        "membership cycle authenticator → web_anon → authenticator",
    ),
    bad(
        "privilege-not-for-that-object",
        with_grants("{to: app_rw, on: table app.items, privileges: [EXECUTE]}"),
        16,
        "databases.app.grants[0]",
        "EXECUTE is not a privilege on a table; use SELECT, INSERT",
    ),
    bad(
        "connect-on-a-schema",
        with_grants("{to: app_rw, on: schema app, privileges: [CONNECT]}"),
        16,
        "databases.app.grants[0]",
        "CONNECT is not a privilege on a schema; use USAGE, CREATE or ALL",
    ),
    bad(
        "unreadable-on",
        with_grants("{to: app_rw, on: tables in app, privileges: [SELECT]}"),
        16,
        "databases.app.grants[0].on",
        "write one of: database | schema NAME | table SCHEMA.NAME",
    ),
    bad(
        "function-with-argument-names",
        with_grants("{to: app_rw, on: 'function app.f(p_id; int)', privileges: [ALL]}"),
        16,
        "databases.app.grants[0].on",
        "list only the types",
    ),
    bad(
        "duplicate-role",
        with_role("  app_rw: {}"),
        9,
        "roles.app_rw",
        "written twice (first on line 4); YAML would keep only the last one",
    ),
    bad(
        "duplicate-grant",
        with_grants(
            "{to: app_rw, on: schema app, privileges: [USAGE]}",
            "{to: [app_ro, app_rw], on: schema app, privileges: [ALL]}",
        ),
        17,
        "databases.app.grants[1]",
        "app_rw already gets USAGE on schema app from grants[0]; merge the two",
    ),
    bad(
        "malformed-password-reference",
        "roles:\n  r: {login: true, password: vault:secret/r}\n",
        2,
        "roles.r.password",
        "write env:VARIABLE or file:/path/to/file",
    ),
    bad(
        "password-on-nologin-role",
        "roles:\n  r:\n    password: env:R_PASSWORD\n",
        3,
        "roles.r.password",
        "remove it or set login: true",
    ),
    bad(
        "authenticator-cannot-log-in",
        ROLES.replace(
            "authenticator: {login: true, inherit: false}",
            "authenticator: {inherit: false}",
        ),
        9,
        "api.authenticator",
        "must be login: true and inherit: false",
    ),
    bad(
        "authenticator-inherits",
        ROLES.replace(
            "authenticator: {login: true, inherit: false}",
            "authenticator: {login: true}",
        ),
        9,
        "api.authenticator",
        "set both under roles.authenticator",
    ),
    bad(
        "api-role-that-logs-in",
        ROLES.replace("web_user: {}", "web_user: {login: true}"),
        9,
        "api.roles[0]",
        "set login: false under roles.web_user",
    ),
    bad(
        "grant-to-the-authenticator",
        with_grants("{to: authenticator, on: schema api, privileges: [USAGE]}"),
        16,
        "databases.app.grants[0].to[0]",
        "grant to web_anon or an api role instead",
    ),
    bad(
        "api-membership-written-again",
        ROLES.replace(
            "authenticator: {login: true, inherit: false}",
            "authenticator: {login: true, inherit: false, member_of: [web_anon]}",
        ),
        6,
        "roles.authenticator.member_of[0]",
        "api: already makes authenticator a member of web_anon",
    ),
    bad(
        "reserved-role-name",
        "roles:\n  public: {}\n",
        2,
        "roles.public",
        "reserved by PostgreSQL",
    ),
    bad(
        "pg-prefixed-role-name",
        "roles:\n  pg_app: {}\n",
        2,
        "roles.pg_app",
        "choose another name",
    ),
    bad(
        "bootstrap-superuser",
        "roles:\n  postgres: {}\n",
        2,
        "roles.postgres",
        "left to pgfortress itself",
    ),
    bad(
        "role-name-not-plain",
        "roles:\n  App-RW: {}\n",
        2,
        "roles.App-RW",
        "use lower-case letters, digits and _",
    ),
    bad(
        "setting-name-invalid",
        "roles:\n  r:\n    settings: {Statement-Timeout: 5s}\n",
        3,
        "roles.r.settings.Statement-Timeout",
        "is not a setting name",
    ),
    bad(
        "setting-that-skips-triggers",
        "roles:\n  r:\n    settings:\n      session_replication_role: replica\n",
        4,
        "roles.r.settings.session_replication_role",
        "must not be set per role: it would let the role skip triggers",
    ),
    bad(
        "setting-that-hides-from-the-audit-log",
        "roles:\n  r:\n    settings:\n      log_statement: none\n",
        4,
        "roles.r.settings.log_statement",
        "logging is the same for every role",
    ),
    bad(
        "server-wide-setting",
        "roles:\n  r:\n    settings:\n      shared_buffers: 1GB\n",
        4,
        "roles.r.settings.shared_buffers",
        "set it with postgres_settings",
    ),
    bad(
        "superuser-asked-for",
        "roles:\n  r:\n    login: true\n    superuser: true\n",
        4,
        "roles.r.superuser",
        "pgfortress never gives SUPERUSER",
    ),
    bad(
        "bypassrls-asked-for",
        "roles:\n  r: {bypassrls: true}\n",
        2,
        "roles.r.bypassrls",
        "remove this key",
    ),
    bad(
        "misspelt-key",
        "roles:\n  r:\n    logn: true\n",
        3,
        "roles.r.logn",
        "did you mean login?",
    ),
    bad(
        "not-a-boolean",
        "roles:\n  r:\n    login: maybe\n",
        3,
        "roles.r.login",
        "'maybe' does not fit (input should be a valid boolean); write true or false",
    ),
    bad(
        "connection-limit-below-minus-one",
        "roles:\n  r: {connection_limit: -5}\n",
        2,
        "roles.r.connection_limit",
        "use -1 for no limit",
    ),
    bad(
        "expiry-without-time",
        "roles:\n  r: {login: true, valid_until: 2027-12-31}\n",
        2,
        "roles.r.valid_until",
        "such as 2027-12-31T00:00:00Z",
    ),
    bad(
        "expiry-without-zone",
        "roles:\n  r: {login: true, valid_until: '2027-12-31T00:00:00'}\n",
        2,
        "roles.r.valid_until",
        "add Z (UTC) or an offset",
    ),
    bad(
        "unmanaged-misspelt",
        "unmanaged: delete\n",
        1,
        "unmanaged",
        "write 'report' or 'remove'",
    ),
    bad(
        "schema-not-declared",
        with_grants(
            "{to: app_rw, on: all tables in schema audit, privileges: [SELECT]}"
        ),
        16,
        "databases.app.grants[0].on",
        "schema audit is not declared; add it under databases.app.schemas",
    ),
    bad(
        "maintenance-database",
        "roles: {o: {}}\ndatabases:\n  postgres: {owner: o}\n",
        3,
        "databases.postgres",
        "give the application a database of its own",
    ),
    bad(
        "no-privileges-listed",
        with_grants("{to: app_rw, on: schema app, privileges: []}"),
        16,
        "databases.app.grants[0].privileges",
        "list at least one",
    ),
    bad(
        "privilege-twice-in-one-line",
        with_grants("{to: app_rw, on: schema app, privileges: [USAGE, usage]}"),
        16,
        "databases.app.grants[0]",
        "list each once",
    ),
    bad(
        "membership-listed-twice",
        "roles:\n  a: {}\n  b:\n    member_of: [a, {role: a, admin: true}]\n",
        4,
        "roles.b.member_of[1]",
        "a is listed twice; keep one entry",
    ),
    bad(
        "owner-missing",
        ROLES + "databases:\n  app: {schemas: {app: {}}}\n",
        11,
        "databases.app.owner",
        "is required; add it",
    ),
    bad(
        "roles-as-a-list",
        "roles: [app_rw, app_ro]\n",
        1,
        "roles",
        "write a mapping of key: value lines",
    ),
    bad(
        "yaml-syntax",
        "roles:\n  r: {login: true\n",
        3,
        "not valid YAML",
        "check the indentation and quoting",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "fix"), BAD_INPUTS)
def test_bad_input_names_file_line_key_and_fix(
    text: str, line: int, key: str, fix: str
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_database_roles(text, "specs/lab.yml")
    message = str(caught.value)
    assert f"specs/lab.yml:{line}: {key}" in message
    assert fix in message


def test_public_surface_is_pinned() -> None:
    expected = {
        "pgfortress.spec.database_roles": [
            "ApiSpec",
            "DatabaseRolesSpec",
            "DatabaseSpec",
            "GrantSpec",
            "MemberOf",
            "RoleSpec",
            "SchemaSpec",
            "SettingValue",
            "load_database_roles",
            "parse_database_roles",
        ],
        "pgfortress.spec.grant_targets": [
            "ALL",
            "GrantTarget",
            "ObjectKind",
            "normalize_type",
            "parse_target",
            "privileges_for",
        ],
        "pgfortress.plan.database_roles": [
            "RolesPlan",
            "Statement",
            "plan_database_roles",
        ],
    }
    for module, names in expected.items():
        assert sorted(importlib.import_module(module).__all__) == names
