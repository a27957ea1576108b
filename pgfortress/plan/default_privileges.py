"""Default privileges, so objects created after a run are covered too.

``ALTER DEFAULT PRIVILEGES`` without ``FOR ROLE`` changes the defaults of the
role that runs it, here the superuser, and so never applies to the tables the
owner creates later. Every statement here names the creator with ``FOR ROLE``:
the schema's owner, and the database owner when that is another role. Objects
must therefore be created by (or after ``SET ROLE`` to) one of those two;
objects owned by anyone else are reported.

PUBLIC may execute every new function by default. Per-schema defaults can only
add to the global ones, so that default is revoked globally, per creator.
"""

from __future__ import annotations

from psycopg import sql

from ..catalog import PUBLIC, CatalogState
from ..spec.database_roles import DatabaseSpec
from ..spec.grant_targets import ObjectKind, privileges_for
from ._scope import Outcome, Scope, is_untouchable
from ._statements import Statement, identifier, statement

__all__ = [
    "DefaultKey",
    "creators",
    "current_defaults",
    "plan_defaults",
    "wanted_defaults",
]

# (creator, schema or None for all schemas, tables|sequences|functions, grantee)
DefaultKey = tuple[str, str | None, str, str]
Defaults = dict[DefaultKey, dict[str, bool]]

_KINDS: dict[str, ObjectKind] = {
    "tables": "table",
    "sequences": "sequence",
    "functions": "function",
}
_MAINTAIN_SINCE = 17


def creators(database: DatabaseSpec, schema: str) -> list[str]:
    """Whose new objects in ``schema`` the defaults must cover."""
    return list(dict.fromkeys([database.schema_owner(schema), database.owner]))


def wanted_defaults(scope: Scope, database: DatabaseSpec) -> Defaults:
    wanted: Defaults = {}
    for grant in database.grants:
        target = grant.on
        if not target.all_in_schema or target.schema is None:
            continue
        plural = f"{target.kind}s"
        for creator in creators(database, target.schema):
            for grantee in grant.to:
                if grantee == creator:
                    continue
                privileges = wanted.setdefault(
                    (creator, target.schema, plural, grantee), {}
                )
                for privilege in grant.expanded(scope.major):
                    if privilege == "MAINTAIN" and scope.major < _MAINTAIN_SINCE:
                        continue
                    privileges[privilege] = privileges.get(privilege, False) or (
                        grant.with_grant_option
                    )
    return wanted


def current_defaults(
    scope: Scope, database: DatabaseSpec, state: CatalogState
) -> Defaults:
    """Defaults in the managed schemas, and global ones given to our roles."""
    held: Defaults = {}
    for row in state.default_privileges:
        kind = _KINDS.get(row.object_type)
        if kind is None or row.privilege not in privileges_for(kind):
            continue
        if is_untouchable(row.owner) or is_untouchable(row.grantee):
            continue
        if row.grantee == row.owner:
            continue
        if row.schema is None:
            if not scope.is_ours(row.grantee):
                continue
        elif row.schema not in database.schemas:
            continue
        key = (row.owner, row.schema, row.object_type, row.grantee)
        privileges = held.setdefault(key, {})
        privileges[row.privilege] = privileges.get(row.privilege, False) or (
            row.grantable
        )
    return held


def plan_defaults(
    scope: Scope,
    name: str,
    database: DatabaseSpec,
    state: CatalogState,
    wanted: Defaults,
) -> tuple[Outcome, Outcome]:
    """Default GRANTs that are missing; then the REVOKEs (or reports)."""
    held = current_defaults(scope, database, state)
    out = Outcome()
    for key in sorted(wanted, key=_rank):
        have = held.get(key, {})
        for option in (False, True):
            missing = [
                p
                for p, g in wanted[key].items()
                if g == option and (p not in have or (g and not have[p]))
            ]
            if missing:
                out.statements.append(_alter(name, key, "GRANT", missing, option))
    revoked = Outcome()
    every_creator = [database.owner, *map(database.schema_owner, database.schemas)]
    for creator in dict.fromkeys(every_creator):
        if _public_may_execute(state, creator):
            revoked.statements.append(
                _alter(
                    name, (creator, None, "functions", PUBLIC), "REVOKE", ["EXECUTE"]
                )
            )
    for key in sorted(held, key=_rank):
        want = wanted.get(key, {})
        extra = [p for p in held[key] if p not in want]
        option_only = [
            p for p, g in held[key].items() if g and p in want and not want[p]
        ]
        if extra:
            revoke = _alter(name, key, "REVOKE", extra)
            if key[3] == PUBLIC and key[2] == "functions":
                revoked.statements.append(revoke)
            else:
                scope.unwanted(key[3], revoke, revoked)
        if option_only:
            revoke = _alter(name, key, "REVOKE GRANT OPTION FOR", option_only)
            scope.unwanted(key[3], revoke, revoked)
    out.reports += _foreign_owners(name, database, state)
    return out, revoked


def _public_may_execute(state: CatalogState, creator: str) -> bool:
    rows = [
        row
        for row in state.default_privileges
        if row.owner == creator
        and row.schema is None
        and row.object_type == "functions"
    ]
    # No global row at all means the built-in default, which includes PUBLIC.
    return not rows or any(row.grantee == PUBLIC for row in rows)


def _alter(
    name: str,
    key: DefaultKey,
    action: str,
    privileges: list[str],
    option: bool = False,
) -> Statement:
    creator, schema, plural, grantee = key
    order = privileges_for(_KINDS[plural])
    ranked = sorted(privileges, key=order.index)
    where = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(identifier(creator))
    if schema is not None:
        where = sql.SQL("{} IN SCHEMA {}").format(where, identifier(schema))
    direction = "FROM" if action.startswith("REVOKE") else "TO"
    query = sql.SQL("{} {} {} ON {} {} {}").format(
        where,
        sql.SQL(action),
        sql.SQL(", ").join(sql.SQL(p) for p in ranked),
        sql.SQL(plural.upper()),
        sql.SQL(direction),
        sql.SQL(PUBLIC) if grantee == PUBLIC else identifier(grantee),
    )
    if option:
        query = sql.SQL("{} WITH GRANT OPTION").format(query)
    return statement(name, query)


def _foreign_owners(
    name: str, database: DatabaseSpec, state: CatalogState
) -> list[str]:
    reports = []
    for item in state.objects:
        if item.schema not in database.schemas:
            continue
        allowed = creators(database, item.schema)
        if item.owner not in allowed:
            reports.append(
                f"database {name}: {item.object_type} {item.schema}.{item.name} is "
                f"owned by {item.owner}; default privileges cover only objects "
                f"created by {' or '.join(allowed)}, so create objects after "
                f"SET ROLE {allowed[0]}"
            )
    return reports


def _rank(key: DefaultKey) -> tuple[str, str, str, str]:
    creator, schema, plural, grantee = key
    return (schema or "", creator, plural, grantee)
