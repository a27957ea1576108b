"""Databases, schemas and the baseline every managed database gets.

The baseline takes away what PostgreSQL gives everyone by default: CONNECT and
TEMPORARY on a new database (the spec then gives CONNECT back to exactly the
LOGIN roles that use it), and CREATE on schema ``public``, which PUBLIC holds
before PostgreSQL 15 and may still hold after an upgrade. It also reports
what the planner does not fix itself: other superusers and untrusted
languages.
"""

from __future__ import annotations

from psycopg import sql

from ..catalog import PUBLIC, CatalogState, Privilege
from ..spec.database_roles import DatabaseSpec
from ._scope import BOOTSTRAP, Outcome, Scope
from ._statements import identifier, statement

__all__ = [
    "fresh_database",
    "plan_databases",
    "plan_public_access",
    "plan_schemas",
    "server_reports",
]

# From 15 on, schema public belongs to whoever owns the database.
_DATABASE_OWNER = "pg_database_owner"
_PUBLIC_CREATE_UNTIL = 14
# Untrusted, but not procedural languages: nobody writes functions in them.
_BUILT_IN = frozenset({"c", "internal"})


def plan_databases(scope: Scope, cluster: CatalogState) -> Outcome:
    """CREATE DATABASE or change its owner (cluster-wide statements)."""
    out = Outcome()
    for name, database in scope.spec.databases.items():
        owner = cluster.databases.get(name)
        target, new_owner = identifier(name), identifier(database.owner)
        if owner is None:
            query = sql.SQL("CREATE DATABASE {} OWNER {}").format(target, new_owner)
        elif owner != database.owner:
            query = sql.SQL("ALTER DATABASE {} OWNER TO {}").format(target, new_owner)
        else:
            continue
        out.statements.append(statement(None, query))
    return out


def fresh_database(name: str, cluster: CatalogState) -> CatalogState:
    """What CREATE DATABASE gives on this server version, to plan against."""
    public_owner = _DATABASE_OWNER if cluster.major >= 15 else BOOTSTRAP
    privileges = {
        Privilege("database", None, name, PUBLIC, "CONNECT"),
        Privilege("database", None, name, PUBLIC, "TEMPORARY"),
        Privilege("schema", None, "public", PUBLIC, "USAGE"),
    }
    if cluster.major <= _PUBLIC_CREATE_UNTIL:
        privileges.add(Privilege("schema", None, "public", PUBLIC, "CREATE"))
    return CatalogState(
        version_num=cluster.version_num,
        database=name,
        roles=cluster.roles,
        memberships=cluster.memberships,
        databases=cluster.databases,
        schemas={"public": public_owner},
        objects=(),
        privileges=frozenset(privileges),
        default_privileges=frozenset(),
        languages={"plpgsql": True, "sql": True, "c": False, "internal": False},
    )


def plan_public_access(name: str, state: CatalogState) -> tuple[Outcome, Outcome]:
    """REVOKE ALL on the database, and CREATE on schema public, from PUBLIC.

    Returned apart: the database revoke runs first, together with the CONNECT
    grants that replace it, so no LOGIN role that needs it is locked out.
    """
    database, schema = Outcome(), Outcome()
    held = {
        (p.object_type, p.name, p.privilege)
        for p in state.privileges
        if p.grantee == PUBLIC
    }
    if any(kind == "database" and obj == name for kind, obj, _ in held):
        query = sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
            identifier(name)
        )
        database.statements.append(statement(name, query))
    if ("schema", "public", "CREATE") in held:
        revoke = sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        schema.statements.append(statement(name, revoke))
    return database, schema


def plan_schemas(name: str, database: DatabaseSpec, state: CatalogState) -> Outcome:
    """CREATE SCHEMA with its owner, or give an existing one its owner."""
    out = Outcome()
    for schema in database.schemas:
        owner = database.schema_owner(schema)
        current = state.schemas.get(schema)
        target, new_owner = identifier(schema), identifier(owner)
        if current is None:
            query = sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                target, new_owner
            )
        elif current != owner and not (
            current == _DATABASE_OWNER and owner == database.owner
        ):
            query = sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(target, new_owner)
        else:
            continue
        out.statements.append(statement(name, query))
    return out


def server_reports(
    scope: Scope, cluster: CatalogState, states: dict[str, CatalogState]
) -> list[str]:
    """What is wrong on the server but not pgfortress's to change."""
    reports = [
        f"role {role.name} is a superuser; only {BOOTSTRAP} should be "
        f"(ALTER ROLE {role.name} NOSUPERUSER, once nothing relies on it)"
        for role in cluster.roles.values()
        if role.superuser
        and role.name != BOOTSTRAP
        and role.name not in scope.spec.roles
    ]
    for name, state in states.items():
        for language, trusted in sorted(state.languages.items()):
            if trusted or language in _BUILT_IN:
                continue
            users = sorted(
                p.grantee
                for p in state.privileges
                if p.object_type == "language"
                and p.name == language
                and p.grantee != BOOTSTRAP
            )
            if users:
                reports.append(
                    f"database {name}: untrusted language {language} lists USAGE "
                    f"for {', '.join(users)}; only superusers should write "
                    f"functions in it, so DROP EXTENSION {language} unless "
                    "something needs it"
                )
    return reports
