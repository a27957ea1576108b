"""Small catalog states for the database-roles planner tests, built by hand.

``BASE_SPEC`` is a two-role spec; :func:`converged` is the state a server has
after that spec was applied, which tests then change one thing at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from collections.abc import Iterable, Mapping

from pgfortress.catalog import (
    BOOTSTRAP_SUPERUSER,
    PUBLIC,
    CatalogObject,
    CatalogState,
    DefaultPrivilege,
    Membership,
    PasswordState,
    Privilege,
    RoleState,
)
from pgfortress.plan.database_roles import RolesPlan, plan_database_roles
from pgfortress.scram import make_verifier
from pgfortress.secrets import Secret
from pgfortress.spec.database_roles import DatabaseRolesSpec, parse_database_roles

MARK = "managed by pgfortress"
SALT = b"0123456789abcdef"

BASE_SPEC = """
roles:
  app_owner: {}
  app_rw: {login: true}
databases:
  app:
    owner: app_owner
    schemas: {app: {}}
    grants:
      - {to: app_rw, on: schema app, privileges: [USAGE]}
      - {to: app_rw, on: all tables in schema app, privileges: [SELECT]}
"""


def spec(text: str = BASE_SPEC) -> DatabaseRolesSpec:
    return parse_database_roles(textwrap.dedent(text), "test.yml")


def password(role: str) -> Secret:
    return Secret(f"correct horse {role}")


def scram(secret: Secret) -> PasswordState:
    """What the catalog reads for a role whose password is ``secret``."""
    verifier = make_verifier(secret, salt=SALT, iterations=4096)
    digest = hashlib.md5(verifier.encode(), usedforsecurity=False).hexdigest()
    return PasswordState("scram", verifier.split("$")[1], digest)


def role(name: str, **attributes: object) -> RoleState:
    """A role pgfortress manages; LOGIN roles get their test password."""
    attributes.setdefault("comment", MARK)
    if attributes.get("login"):
        attributes.setdefault("password", scram(password(name)))
    return RoleState(name, **attributes)  # type: ignore[arg-type]


POSTGRES = BOOTSTRAP_SUPERUSER


def cluster(
    *roles: RoleState,
    version: int = 16,
    memberships: Iterable[Membership] = (),
    databases: Mapping[str, str] | None = None,
) -> CatalogState:
    return CatalogState(
        version_num=version * 10000 + 2,
        database="postgres",
        roles={r.name: r for r in (POSTGRES, *roles)},
        memberships=frozenset(memberships),
        databases=dict(databases or {"postgres": "postgres", "app": "app_owner"}),
        schemas={"public": "pg_database_owner"},
        objects=(),
        privileges=frozenset(),
        default_privileges=frozenset(),
        languages={"plpgsql": True, "c": False, "internal": False, "sql": True},
    )


def grant(
    on: str, grantee: str, *privileges: str, grantable: bool = False
) -> set[Privilege]:
    """``grant("table app.items", "app_rw", "SELECT")``, as aclexplode reports it."""
    kind, _, target = on.partition(" ")
    schema, name = (
        (None, target)
        if kind in ("database", "schema", "language")
        else target.split(".", 1)
    )
    return {
        Privilege(kind, schema, name, grantee, p, grantable)  # type: ignore[arg-type]
        for p in privileges
    }


def default(
    owner: str, schema: str | None, kind: str, grantee: str, *privileges: str
) -> set[DefaultPrivilege]:
    return {
        DefaultPrivilege(owner, schema, kind, grantee, p)  # type: ignore[arg-type]
        for p in privileges
    }


def database(
    name: str = "app",
    *,
    version: int = 16,
    schemas: Mapping[str, str] | None = None,
    objects: Iterable[CatalogObject] = (),
    privileges: Iterable[Privilege] = (),
    defaults: Iterable[DefaultPrivilege] = (),
) -> CatalogState:
    base = cluster(version=version)
    return dataclasses.replace(
        base,
        database=name,
        schemas=dict(schemas or {"public": "pg_database_owner"}),
        objects=tuple(objects),
        privileges=frozenset(privileges),
        default_privileges=frozenset(defaults),
    )


def table(schema: str, name: str, owner: str = "app_owner") -> CatalogObject:
    return CatalogObject("table", schema, name, owner)


OWNER_ALL = grant("database app", "app_owner", "CONNECT", "CREATE", "TEMPORARY")


def converged_cluster(*extra: RoleState, version: int = 16) -> CatalogState:
    return cluster(
        role("app_owner"), role("app_rw", login=True), *extra, version=version
    )


def converged_database(version: int = 16) -> CatalogState:
    """``app`` after BASE_SPEC was applied, with one table the owner created."""
    return database(
        version=version,
        schemas={"public": "pg_database_owner", "app": "app_owner"},
        objects=[table("app", "items")],
        privileges=OWNER_ALL
        | grant("database app", "app_rw", "CONNECT")
        | grant("schema public", PUBLIC, "USAGE")
        | grant("schema app", "app_owner", "USAGE", "CREATE")
        | grant("schema app", "app_rw", "USAGE")
        | grant("table app.items", "app_owner", "SELECT", "INSERT", "UPDATE")
        | grant("table app.items", "app_rw", "SELECT"),
        defaults=default("app_owner", "app", "tables", "app_rw", "SELECT")
        | default("app_owner", None, "functions", "app_owner", "EXECUTE"),
    )


def plan(
    the_spec: DatabaseRolesSpec,
    the_cluster: CatalogState,
    databases: Mapping[str, CatalogState | None] | None = None,
) -> RolesPlan:
    passwords = {name: password(name) for name, r in the_spec.roles.items() if r.login}
    return plan_database_roles(the_spec, the_cluster, databases or {}, passwords)


def shown(result: RolesPlan) -> list[str]:
    """Each statement as the log shows it, prefixed with where it runs."""
    return [
        (f"[{s.database}] " if s.database else "") + s.display
        for s in result.statements
    ]


def changed(
    state: CatalogState, add: Iterable[Privilege] = (), drop: Iterable[Privilege] = ()
) -> CatalogState:
    return dataclasses.replace(
        state, privileges=(state.privileges | set(add)) - set(drop)
    )
