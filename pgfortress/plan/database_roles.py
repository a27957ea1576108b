"""Plan database roles: the spec and the catalogs in, exact SQL out.

:func:`plan_database_roles` compares the spec with what the server holds and
returns only the difference, in both directions, as statements in the order
they must run:

1. cluster-wide: create missing roles, then attributes, passwords, role
   settings, comments and memberships; create databases or set their owner;
2. per database: REVOKE ALL from PUBLIC and CONNECT for the LOGIN roles that
   use it, CREATE on schema public revoked from PUBLIC, schemas, grants and
   default privileges, then revokes;
3. roles pgfortress created that the spec no longer lists are dropped last
   (with ``unmanaged: remove``).

When nothing differs the plan has no statements and :meth:`RolesPlan.summary`
says so in one sentence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog import CatalogState
from ..secrets import Secret
from ..spec.database_roles import DatabaseRolesSpec
from ._retire import retire_roles
from ._scope import Outcome, Scope, is_untouchable
from ._statements import Statement
from ._wanted import Wanted, wanted_privileges
from .database_setup import (
    fresh_database,
    plan_databases,
    plan_public_access,
    plan_schemas,
    server_reports,
)
from .default_privileges import plan_defaults, wanted_defaults
from .grants import current_privileges, object_owners, plan_grants
from .membership import plan_memberships, wanted_memberships
from .role_attributes import (
    alter_attributes,
    create_roles,
    createrole_reports,
    role_comments,
    role_settings,
    set_passwords,
)

__all__ = ["RolesPlan", "Statement", "plan_database_roles"]


@dataclass(frozen=True)
class RolesPlan:
    """Statements to run, in order, and what is only reported.

    The counts describe what the spec asks for (not what changes); the summary
    uses them.
    """

    statements: tuple[Statement, ...]
    reports: tuple[str, ...]
    roles: int = 0
    memberships: int = 0
    privileges: int = 0
    default_privileges: int = 0

    def summary(self) -> str:
        if not self.statements:
            return (
                f"database roles match the spec: {_count(self.roles, 'role')}, "
                f"{_count(self.memberships, 'membership')}, "
                f"{_count(self.privileges, 'privilege')}, "
                f"{_count(self.default_privileges, 'default privilege')}; "
                "nothing to change"
            )
        places = Counter(s.database for s in self.statements)
        parts = [
            "cluster-wide" if where is None else f"in database {where}"
            for where in places
        ]
        detail = ", ".join(
            f"{places[w]} {p}" for w, p in zip(places, parts, strict=True)
        )
        return (
            f"database roles differ from the spec: "
            f"{_count(len(self.statements), 'statement')} to run ({detail})"
        )


def plan_database_roles(
    spec: DatabaseRolesSpec,
    cluster: CatalogState,
    databases: Mapping[str, CatalogState | None],
    passwords: Mapping[str, Secret],
) -> RolesPlan:
    """Compare the spec with the server and plan the difference.

    ``cluster`` is read from the maintenance database (roles, memberships and
    the list of databases are cluster-wide); ``databases`` maps each database
    of the spec to its state, or None when it does not exist yet.
    ``passwords`` holds the password of every LOGIN role.
    """
    scope = Scope.of(spec, cluster)
    states = _database_states(spec, cluster, databases)
    out = Outcome()
    for step in (create_roles, alter_attributes):
        out.add(step(scope, cluster))
    out.add(set_passwords(scope, cluster, passwords))
    for step in (role_settings, role_comments, plan_memberships, plan_databases):
        out.add(step(scope, cluster))

    privileges = defaults = 0
    for name, database in spec.databases.items():
        state = states[name]
        owners = object_owners(name, database, cluster, state)
        wanted = wanted_privileges(scope, name, database, state)
        held = current_privileges(name, database, state, owners)
        public_database, public_schema = plan_public_access(name, state)
        wanted_database, wanted_objects = _split(wanted.privileges)
        held_database, held_objects = _split(held)
        database_grants, database_revokes = plan_grants(
            scope, name, wanted_database, held_database
        )
        object_grants, object_revokes = plan_grants(
            scope, name, wanted_objects, held_objects
        )
        wanted_default = wanted_defaults(scope, database)
        default_grants, default_revokes = plan_defaults(
            scope, name, database, state, wanted_default
        )
        out.reports += wanted.reports
        for part in (public_database, database_grants, public_schema):
            out.add(part)
        out.add(plan_schemas(name, database, state))
        for part in (object_grants, default_grants, database_revokes, object_revokes):
            out.add(part)
        out.add(default_revokes)
        privileges += sum(len(p) for p in wanted.privileges.values())
        defaults += sum(len(p) for p in wanted_default.values())

    out.add(retire_roles(scope, cluster, states))
    out.reports += server_reports(scope, cluster, states)
    out.reports += _unknown_roles(scope, cluster)
    out.reports += createrole_reports(scope)
    return RolesPlan(
        statements=tuple(out.statements),
        reports=tuple(dict.fromkeys(out.reports)),
        roles=len(spec.roles),
        memberships=len(wanted_memberships(spec)),
        privileges=privileges,
        default_privileges=defaults,
    )


def _database_states(
    spec: DatabaseRolesSpec,
    cluster: CatalogState,
    databases: Mapping[str, CatalogState | None],
) -> dict[str, CatalogState]:
    states = {}
    for name in spec.databases:
        state = databases.get(name)
        if state is None and name in cluster.databases:
            raise ValueError(
                f"database {name} exists on the server but no state was read "
                "from it; read the catalog connected to that database"
            )
        states[name] = state or fresh_database(name, cluster)
    return states


def _split(privileges: Wanted) -> tuple[Wanted, Wanted]:
    # Database privileges are planned first, with the revoke from PUBLIC.
    on_database = {k: v for k, v in privileges.items() if k[0][0] == "database"}
    others = {k: v for k, v in privileges.items() if k[0][0] != "database"}
    return on_database, others


def _unknown_roles(scope: Scope, cluster: CatalogState) -> list[str]:
    return [
        f"role {name} is not in the spec and was not created by pgfortress; left alone"
        for name in sorted(cluster.roles)
        if name not in scope.spec.roles
        and name not in scope.retired
        and not is_untouchable(name)
    ]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
