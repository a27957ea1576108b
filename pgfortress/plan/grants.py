"""GRANT and REVOKE on databases, schemas, tables, sequences and functions.

The comparison is per object, per grantee, per privilege, so a grant is
planned exactly when the catalog lacks it and a second run plans nothing.
Statements are grouped: one GRANT gives the same privileges to one grantee on
every object of a kind that lacks them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from psycopg import sql

from ..catalog import PUBLIC, CatalogState
from ..spec.database_roles import DatabaseSpec
from ..spec.grant_targets import privileges_for
from ._scope import Outcome, Scope, is_untouchable
from ._statements import Statement, identifier, objects_clause, statement
from ._wanted import ObjectKey, Wanted

__all__ = [
    "Group",
    "current_privileges",
    "is_managed",
    "object_owners",
    "plan_grants",
]

# The privileges each kind of object can have, in the order SQL lists them.
_ORDER = {
    kind: privileges_for(kind)
    for kind in ("database", "schema", "table", "sequence", "function")
}
_KINDS = tuple(_ORDER)


class Group(NamedTuple):
    """Objects that get the same statement: same kind, grantee and privileges.

    ``option`` is the grant option: WITH GRANT OPTION in a GRANT, CASCADE in
    a REVOKE.
    """

    kind: str
    grantee: str
    privileges: tuple[str, ...]
    option: bool


Groups = dict[Group, list[ObjectKey]]


def object_owners(
    name: str, database: DatabaseSpec, cluster: CatalogState, state: CatalogState
) -> dict[ObjectKey, set[str]]:
    """Who owns each managed object, now or once the plan has run."""
    owners: dict[ObjectKey, set[str]] = {
        ("database", None, name): {database.owner, cluster.databases.get(name, "")}
    }
    for schema in database.schemas:
        now = state.schemas.get(schema, "")
        owners[("schema", None, schema)] = {database.schema_owner(schema), now}
    for item in state.objects:
        owners[(item.object_type, item.schema, item.name)] = {item.owner}
    return owners


def is_managed(key: ObjectKey, name: str, database: DatabaseSpec) -> bool:
    """Whether an object belongs to the part of ``name`` the spec manages."""
    kind, schema, object_name = key
    if kind == "database":
        return object_name == name
    if kind == "schema":
        return object_name in database.schemas
    return kind in _KINDS and schema in database.schemas


def current_privileges(
    name: str,
    database: DatabaseSpec,
    state: CatalogState,
    owners: dict[ObjectKey, set[str]],
) -> Wanted:
    """What the catalog holds in the managed part of one database.

    That part is the database itself, its declared schemas and the objects in
    them. Owners' implicit privileges, untouchable roles, and what the
    baseline handles on its own (anything PUBLIC has on the database, CREATE
    on schema public) are left out.
    """
    held: Wanted = {}
    for item in state.privileges:
        key: ObjectKey = (item.object_type, item.schema, item.name)
        if not is_managed(key, name, database) or is_untouchable(item.grantee):
            continue
        if item.grantee in owners.get(key, set()):
            continue
        if item.privilege not in _ORDER.get(item.object_type, ()):
            continue
        if item.grantee == PUBLIC and (
            item.object_type == "database"
            or (key == ("schema", None, "public") and item.privilege == "CREATE")
        ):
            continue
        privileges = held.setdefault((key, item.grantee), {})
        privileges[item.privilege] = privileges.get(item.privilege, False) or (
            item.grantable
        )
    return held


def plan_grants(
    scope: Scope, name: str, wanted: Wanted, held: Wanted
) -> tuple[Outcome, Outcome]:
    """GRANT what is missing; REVOKE (or report) what is not wanted.

    The two parts are returned apart so the plan can run every grant before
    any revoke.
    """
    # Grantees that lack exactly the same things share one statement.
    shared: dict[tuple[Group, tuple[ObjectKey, ...]], list[str]] = {}
    for group, objects in _ordered(_missing(wanted, held)):
        anyone = group._replace(grantee="")
        shared.setdefault((anyone, tuple(objects)), []).append(group.grantee)
    granted = Outcome()
    for (group, targets), grantees in shared.items():
        granted.statements.append(_grant(name, group, targets, grantees))

    revoked = Outcome()
    extra, options = _extra(wanted, held)
    for group, objects in _ordered(extra):
        revoke = _revoke(name, group, objects, option_only=False)
        if group.grantee == PUBLIC and group.kind == "function":
            # Otherwise every role, present and future, may call every function.
            revoked.statements.append(revoke)
        else:
            scope.unwanted(group.grantee, revoke, revoked)
    for group, objects in _ordered(options):
        revoke = _revoke(name, group, objects, option_only=True)
        scope.unwanted(group.grantee, revoke, revoked)
    return granted, revoked


def _missing(wanted: Wanted, held: Wanted) -> Groups:
    groups: Groups = {}
    for (key, grantee), privileges in wanted.items():
        have = held.get((key, grantee), {})
        for option in (False, True):
            missing = [
                privilege
                for privilege, grantable in privileges.items()
                if grantable == option
                and (privilege not in have or (grantable and not have[privilege]))
            ]
            _group(groups, key, grantee, missing, option)
    return groups


def _extra(wanted: Wanted, held: Wanted) -> tuple[Groups, Groups]:
    """Privileges not wanted at all, and grant options not wanted."""
    extra: Groups = {}
    options: Groups = {}
    for (key, grantee), privileges in held.items():
        want = wanted.get((key, grantee), {})
        for option in (False, True):
            names = [p for p, g in privileges.items() if g == option and p not in want]
            _group(extra, key, grantee, names, option)
        names = [p for p, g in privileges.items() if g and p in want and not want[p]]
        _group(options, key, grantee, names, True)
    return extra, options


def _group(
    groups: Groups, key: ObjectKey, grantee: str, privileges: list[str], option: bool
) -> None:
    if privileges:
        ranked = tuple(sorted(privileges, key=_ORDER[key[0]].index))
        groups.setdefault(Group(key[0], grantee, ranked, option), []).append(key)


def _ordered(groups: Groups) -> Iterator[tuple[Group, list[ObjectKey]]]:
    def rank(group: Group) -> tuple[int, str, tuple[str, ...], bool]:
        return (_KINDS.index(group.kind), group.grantee, group.privileges, group.option)

    for group in sorted(groups, key=rank):
        yield group, sorted(groups[group], key=lambda key: (key[1] or "", key[2]))


def _grant(
    name: str, group: Group, objects: Sequence[ObjectKey], grantees: list[str]
) -> Statement:
    # Privilege names are keywords from a fixed list (the spec's are checked,
    # the catalog's filtered), so they are written as SQL, not quoted.
    query = sql.SQL("GRANT {} ON {} TO {}").format(
        sql.SQL(", ").join(sql.SQL(p) for p in group.privileges),
        objects_clause(group.kind, [(schema, obj) for _, schema, obj in objects]),
        sql.SQL(", ").join(_grantee(grantee) for grantee in grantees),
    )
    if group.option:
        query = sql.SQL("{} WITH GRANT OPTION").format(query)
    return statement(name, query)


def _revoke(
    name: str,
    group: Group,
    objects: list[ObjectKey],
    *,
    option_only: bool,
) -> Statement:
    kind, grantee, privileges, option = group
    prefix = sql.SQL("REVOKE GRANT OPTION FOR" if option_only else "REVOKE")
    query = sql.SQL("{} {} ON {} FROM {}").format(
        prefix,
        sql.SQL(", ").join(sql.SQL(p) for p in privileges),
        objects_clause(kind, [(schema, obj) for _, schema, obj in objects]),
        _grantee(grantee),
    )
    if option:
        # A grantee with the grant option may have passed the privilege on;
        # without CASCADE the server refuses while those grants exist.
        query = sql.SQL("{} CASCADE").format(query)
    return statement(name, query)


def _grantee(role: str) -> sql.Composable:
    return sql.SQL(PUBLIC) if role == PUBLIC else identifier(role)
