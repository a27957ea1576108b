"""The privileges a database should end up with, worked out from the spec.

``all X in schema S`` means every such object that exists now (default
privileges cover the later ones); a named object that does not exist yet is
left for a later run and reported. Privileges an owner holds by owning are
never planned: the server gives them implicitly and they are not grants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..catalog import CatalogObject, CatalogState
from ..spec._role_checks import membership_edges
from ..spec.database_roles import DatabaseSpec, GrantSpec
from ..spec.grant_targets import GrantTarget, normalize_type
from ._scope import Scope
from ._statements import split_function

__all__ = ["ObjectKey", "Wanted", "connect_roles", "find_object", "wanted_privileges"]

ObjectKey = tuple[str, str | None, str]  # (kind, schema, name)
# (object, grantee) → {privilege: with grant option}
Wanted = dict[tuple[ObjectKey, str], dict[str, bool]]

_MODES = re.compile(r"(?:(?:IN|OUT|INOUT|VARIADIC)\s+)?(?P<rest>.*)", re.IGNORECASE)
_NAMED = re.compile(r'(?:"(?:[^"]|"")*"|\S+)\s+(?P<type>.+)')
_MAINTAIN_SINCE = 17


@dataclass
class WantedState:
    privileges: Wanted = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)


def wanted_privileges(
    scope: Scope, name: str, database: DatabaseSpec, state: CatalogState
) -> WantedState:
    """Every (object, grantee) → privileges the database should hold."""
    wanted = WantedState()
    for grant in database.grants:
        for key, owner in _objects(name, database, grant.on, state, wanted):
            for grantee in grant.to:
                if grantee != owner:
                    _add(scope, wanted, key, grantee, grant)
    itself: ObjectKey = ("database", None, name)
    for role in connect_roles(scope, database):
        if role != database.owner:
            wanted.privileges.setdefault((itself, role), {}).setdefault(
                "CONNECT", False
            )
    return wanted


def connect_roles(scope: Scope, database: DatabaseSpec) -> list[str]:
    """LOGIN roles that need CONNECT once PUBLIC no longer has it.

    A LOGIN role needs it when it, or a role it belongs to, owns the database
    or one of its schemas or is given anything in it. The api authenticator is
    covered this way through the roles it switches to.
    """
    relevant = {database.owner} | {grantee for g in database.grants for grantee in g.to}
    relevant |= {database.schema_owner(schema) for schema in database.schemas}
    edges = membership_edges(scope.spec)
    found = []
    for role_name, role in scope.spec.roles.items():
        if role.login and _reach(role_name, edges) & relevant:
            found.append(role_name)
    return found


def find_object(state: CatalogState, target: GrantTarget) -> CatalogObject | None:
    """The existing object a named ``on:`` means, or None."""
    for item in state.objects:
        if item.object_type != target.kind or item.schema != target.schema:
            continue
        if target.kind != "function":
            if item.name == target.name:
                return item
            continue
        proname, args = split_function(item.name)
        if proname == target.name and _same_signature(args, target.args):
            return item
    return None


def _objects(
    name: str,
    database: DatabaseSpec,
    target: GrantTarget,
    state: CatalogState,
    wanted: WantedState,
) -> list[tuple[ObjectKey, str]]:
    if target.kind == "database":
        return [(("database", None, name), database.owner)]
    if target.kind == "schema":
        schema = target.name or ""
        return [(("schema", None, schema), database.schema_owner(schema))]
    if target.all_in_schema:
        return [
            ((item.object_type, item.schema, item.name), item.owner)
            for item in state.objects
            if item.object_type == target.kind and item.schema == target.schema
        ]
    found = find_object(state, target)
    if found is None:
        wanted.reports.append(
            f"database {name}: {target} does not exist yet; its grant is planned "
            "on the first run after it is created"
        )
        return []
    return [((found.object_type, found.schema, found.name), found.owner)]


def _add(
    scope: Scope, wanted: WantedState, key: ObjectKey, grantee: str, grant: GrantSpec
) -> None:
    privileges = wanted.privileges.setdefault((key, grantee), {})
    for privilege in grant.expanded(scope.major):
        if privilege == "MAINTAIN" and scope.major < _MAINTAIN_SINCE:
            wanted.reports.append(
                f"MAINTAIN on {grant.on} for {grantee} needs PostgreSQL 17; "
                f"this server runs {scope.major}, so it is left out"
            )
            continue
        privileges[privilege] = privileges.get(privilege, False) or (
            grant.with_grant_option
        )
    if not privileges:
        del wanted.privileges[(key, grantee)]


def _reach(role: str, edges: dict[str, list[str]]) -> set[str]:
    seen = {role}
    todo = [role]
    while todo:
        for parent in edges.get(todo.pop(), []):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _same_signature(catalog_args: str, wanted: tuple[str, ...]) -> bool:
    # The catalog prints argument names and modes ("VARIADIC p_ids integer[]");
    # the spec lists only types, so each catalog argument matches when it is
    # the wanted type, with or without a leading name.
    given = [part.strip() for part in catalog_args.split(",") if part.strip()]
    if len(given) != len(wanted):
        return False
    for text, wanted_type in zip(given, wanted, strict=True):
        match = _MODES.fullmatch(text)
        rest = match["rest"] if match else text
        named = _NAMED.fullmatch(rest)
        candidates = {normalize_type(rest)}
        if named:
            candidates.add(normalize_type(named["type"]))
        if wanted_type not in candidates:
            return False
    return True
