"""Checks of databases, schemas and grants that need the whole spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._role_checks import Problem, unknown_role
from ._yaml import KeyPath, dotted
from .grant_targets import ALL, privileges_for

if TYPE_CHECKING:
    from .database_roles import DatabaseRolesSpec, DatabaseSpec

__all__ = ["database_problems"]

_MAINTENANCE = {"postgres", "template0", "template1"}


def database_problems(spec: DatabaseRolesSpec) -> list[Problem]:
    """Every problem with databases, schemas and grants, in file order."""
    found: list[Problem] = []
    for name, database in spec.databases.items():
        base: KeyPath = ("databases", name)
        found += _database(spec, base, name, database)
        found += _schemas(spec, base, database)
        found += _grants(spec, base, database)
    return found


def _database(
    spec: DatabaseRolesSpec, base: KeyPath, name: str, database: DatabaseSpec
) -> Iterator[Problem]:
    if name in _MAINTENANCE:
        why = (
            f"{name} is a maintenance database every client may need; give the "
            "application a database of its own"
        )
        yield base, why
    elif not 0 < len(name.encode()) < 64 or "\0" in name:
        yield base, "a database name is 1 to 63 bytes; shorten it"
    if database.owner not in spec.roles:
        yield (*base, "owner"), unknown_role(database.owner, spec)


def _schemas(
    spec: DatabaseRolesSpec, base: KeyPath, database: DatabaseSpec
) -> Iterator[Problem]:
    for schema, declared in database.schemas.items():
        path: KeyPath = (*base, "schemas", schema)
        if schema.startswith("pg_") or schema == "information_schema":
            yield path, f"{schema} is a system schema; choose another name"
        elif not 0 < len(schema.encode()) < 64 or "\0" in schema:
            yield path, "a schema name is 1 to 63 bytes; shorten it"
        if declared.owner is not None and declared.owner not in spec.roles:
            yield (*path, "owner"), unknown_role(declared.owner, spec)


def _grants(
    spec: DatabaseRolesSpec, base: KeyPath, database: DatabaseSpec
) -> Iterator[Problem]:
    given: dict[tuple[str, str, str], int] = {}
    for index, grant in enumerate(database.grants):
        path: KeyPath = (*base, "grants", index)
        schema = grant.on.schema_name
        if schema is not None and schema not in database.schemas:
            why = (
                f"schema {schema} is not declared; add it under "
                f"{dotted((*base, 'schemas'))}"
            )
            yield (*path, "on"), why
        every = privileges_for(grant.on.kind) if ALL in grant.privileges else ()
        for position, role in enumerate(grant.to):
            where: KeyPath = (*path, "to", position)
            if role not in spec.roles:
                yield where, unknown_role(role, spec)
            elif spec.api is not None and role == spec.api.authenticator:
                why = (
                    f"{role} is the api authenticator and must hold no privileges "
                    "of its own (it gets CONNECT automatically); grant to "
                    f"{spec.api.anonymous} or an api role instead"
                )
                yield where, why
            for privilege in every or grant.privileges:
                key = (role, str(grant.on), privilege)
                if key in given:
                    why = (
                        f"{role} already gets {privilege} on {grant.on} from "
                        f"grants[{given[key]}]; merge the two lines or remove one"
                    )
                    yield path, why
                    break
                given[key] = index
