"""Role memberships, with the per-membership options of PostgreSQL 16 and later.

From 16 on, each membership says whether the member inherits the role's
privileges (INHERIT) and whether it may ``SET ROLE`` to it (SET). The server
picks INHERIT from the member's own INHERIT attribute at the moment of the
GRANT and never updates it afterwards, so a role made NOINHERIT once (or an
INHERIT role granted while it was NOINHERIT) keeps memberships that inherit
nothing. The planner therefore always states both options and corrects them
when they drift. Before 16 only ADMIN exists per membership; inheritance is
the member's INHERIT attribute and every member may SET ROLE.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ..catalog import CatalogState, Membership
from ..spec.database_roles import DatabaseRolesSpec
from ._scope import Outcome, Scope, is_untouchable
from ._statements import Statement, identifier, statement

__all__ = ["MembershipOptions", "plan_memberships", "wanted_memberships"]

_OPTIONS_SINCE = 16


@dataclass(frozen=True)
class MembershipOptions:
    admin: bool
    inherit: bool
    set: bool


Key = tuple[str, str]  # (role, member)


def wanted_memberships(spec: DatabaseRolesSpec) -> dict[Key, MembershipOptions]:
    """Every membership the spec asks for, with its options made explicit."""
    wanted: dict[Key, MembershipOptions] = {}
    for name, role in spec.roles.items():
        for entry in role.member_of:
            inherit = role.inherit if entry.inherit is None else entry.inherit
            wanted[(entry.role, name)] = MembershipOptions(
                entry.admin, inherit, entry.set
            )
    if spec.api is not None:
        # The gateway switches role per request; it must never simply inherit.
        for role_name in (spec.api.anonymous, *spec.api.roles):
            key = (role_name, spec.api.authenticator)
            wanted[key] = MembershipOptions(admin=False, inherit=False, set=True)
    return wanted


def plan_memberships(scope: Scope, cluster: CatalogState) -> Outcome:
    """REVOKE memberships not in the spec, then GRANT or correct the others."""
    wanted = wanted_memberships(scope.spec)
    current: dict[Key, list[Membership]] = {}
    for row in cluster.memberships:
        current.setdefault((row.role, row.member), []).append(row)

    out = Outcome()
    # Revokes come first: a grant in the opposite direction would be circular.
    for role, member in sorted(set(current) - set(wanted)):
        if is_untouchable(role) or is_untouchable(member):
            continue
        if scope.is_ours(role) or scope.is_ours(member):
            holder = member if scope.is_ours(member) else role
            scope.unwanted(holder, _revoke(role, member), out)
    for (role, member), options in wanted.items():
        rows = current.get((role, member), [])
        if scope.major >= _OPTIONS_SINCE:
            _with_options(role, member, options, rows, out)
        else:
            _admin_only(scope, role, member, options, rows, out)
    return out


def _with_options(
    role: str,
    member: str,
    options: MembershipOptions,
    rows: list[Membership],
    out: Outcome,
) -> None:
    # A membership granted by several grantors counts if any grant allows it.
    admin = any(row.admin for row in rows)
    changes: list[str] = []
    if options.admin and not admin:
        changes.append("ADMIN TRUE")
    if not rows or any(row.inherit for row in rows) != options.inherit:
        changes.append(f"INHERIT {str(options.inherit).upper()}")
    if not rows or any(row.set for row in rows) != options.set:
        changes.append(f"SET {str(options.set).upper()}")
    if changes:
        query = sql.SQL("GRANT {} TO {} WITH {}").format(
            identifier(role), identifier(member), sql.SQL(", ".join(changes))
        )
        out.statements.append(statement(None, query))
    if admin and not options.admin:
        out.statements.append(_revoke_admin(role, member))


def _admin_only(
    scope: Scope,
    role: str,
    member: str,
    options: MembershipOptions,
    rows: list[Membership],
    out: Outcome,
) -> None:
    admin = any(row.admin for row in rows)
    if not rows or (options.admin and not admin):
        query = sql.SQL("GRANT {} TO {}").format(identifier(role), identifier(member))
        if options.admin:
            query = sql.SQL("{} WITH ADMIN OPTION").format(query)
        out.statements.append(statement(None, query))
    elif admin and not options.admin:
        out.statements.append(_revoke_admin(role, member))
    member_spec = scope.spec.roles.get(member)
    if member_spec is not None and member_spec.inherit != options.inherit:
        how = "inherits" if member_spec.inherit else "does not inherit"
        out.reports.append(
            f"PostgreSQL {scope.major} has no per-membership INHERIT: {member} "
            f"{how} {role}'s privileges, as its own INHERIT attribute says; set "
            f"inherit on roles.{member} to change that"
        )
    if not options.set:
        out.reports.append(
            f"PostgreSQL {scope.major} has no per-membership SET: {member} can "
            f"still SET ROLE {role}; that option needs PostgreSQL 16"
        )


def _revoke(role: str, member: str) -> Statement:
    query = sql.SQL("REVOKE {} FROM {}").format(identifier(role), identifier(member))
    return statement(None, query)


def _revoke_admin(role: str, member: str) -> Statement:
    query = sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(
        identifier(role), identifier(member)
    )
    return statement(None, query)
