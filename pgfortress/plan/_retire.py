"""Roles pgfortress created that the spec no longer lists.

With ``unmanaged: remove`` such a role is dropped, but only when nothing in
the states read still depends on it after this plan's revokes: PostgreSQL
refuses to drop a role that owns objects or holds privileges, and a half-run
plan is worse than a report. DROP ROLE runs last, after every database's
revokes, which is why it is tagged with the last database of the spec.
"""

from __future__ import annotations

from psycopg import sql

from ..catalog import CatalogState
from ._scope import Outcome, Scope
from ._statements import identifier, statement
from .grants import is_managed

__all__ = ["retire_roles"]


def retire_roles(
    scope: Scope, cluster: CatalogState, states: dict[str, CatalogState]
) -> Outcome:
    out = Outcome()
    last = next(reversed(scope.spec.databases), None)
    for name in sorted(scope.retired):
        if not scope.remove:
            out.reports.append(
                f"role {name} is no longer in the spec; pgfortress created it and "
                "keeps it because unmanaged is report"
            )
            continue
        reason = _still_needed(scope, name, cluster, states)
        if reason is not None:
            out.reports.append(
                f"role {name} is no longer in the spec but is not dropped: it "
                f"{reason}; move or revoke that first"
            )
            continue
        query = sql.SQL("DROP ROLE {}").format(identifier(name))
        out.statements.append(statement(last, query))
    return out


def _still_needed(
    scope: Scope, role: str, cluster: CatalogState, states: dict[str, CatalogState]
) -> str | None:
    for database, owner in sorted(cluster.databases.items()):
        if owner == role:
            return f"owns database {database}"
    for database, state in [(cluster.database, cluster), *states.items()]:
        reason = _in_database(scope, role, database, state)
        if reason is not None:
            return f"{reason} in database {database}"
    return None


def _in_database(
    scope: Scope, role: str, database: str, state: CatalogState
) -> str | None:
    for schema, owner in sorted(state.schemas.items()):
        if owner == role:
            return f"owns schema {schema}"
    for item in state.objects:
        if item.owner == role:
            return f"owns {item.object_type} {item.schema}.{item.name}"
    spec = scope.spec.databases.get(database)
    for privilege in sorted(state.privileges, key=repr):
        if privilege.grantee != role:
            continue
        key = (privilege.object_type, privilege.schema, privilege.name)
        if privilege.object_type == "database":
            covered = privilege.name in scope.spec.databases
        else:
            covered = spec is not None and is_managed(key, database, spec)
        if not covered:
            return f"holds {privilege.privilege} on {privilege.object_type} " + (
                f"{privilege.schema}.{privilege.name}"
                if privilege.schema
                else privilege.name
            )
    for default in state.default_privileges:
        if default.owner == role:
            return "has default privileges of its own (FOR ROLE " + role + ")"
        in_scope = default.schema is None or (
            spec is not None and default.schema in spec.schemas
        )
        if default.grantee == role and not in_scope:
            return f"is given default privileges in schema {default.schema}"
    return None
