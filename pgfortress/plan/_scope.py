"""What the planner may touch, and what it only reports.

Managed roles are the ones in the spec. Retired roles are roles pgfortress
created earlier (their comment starts with :data:`MANAGED_MARK`) that the spec
no longer lists: they are cleaned up like managed ones. Anything else belongs
to someone else and is only ever reported. The bootstrap superuser, the
``pg_`` roles and pgfortress's own ``pgfortress_`` roles are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..catalog import PUBLIC, CatalogState
from ..spec.database_roles import DatabaseRolesSpec
from ._statements import Statement

__all__ = ["BOOTSTRAP", "MANAGED_MARK", "Outcome", "Scope", "is_untouchable"]

BOOTSTRAP = "postgres"
MANAGED_MARK = "managed by pgfortress"


def is_untouchable(role: str) -> bool:
    """Roles never granted to, revoked from, altered or reported."""
    return role == BOOTSTRAP or role.startswith(("pg_", "pgfortress_"))


@dataclass
class Outcome:
    """Statements to run and sentences to report, in order."""

    statements: list[Statement] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)

    def add(self, other: Outcome) -> None:
        self.statements += other.statements
        self.reports += other.reports


@dataclass(frozen=True)
class Scope:
    """The spec, the server version, and who counts as managed."""

    spec: DatabaseRolesSpec
    major: int
    retired: frozenset[str]

    @classmethod
    def of(cls, spec: DatabaseRolesSpec, cluster: CatalogState) -> Scope:
        retired = frozenset(
            role.name
            for role in cluster.roles.values()
            if role.name not in spec.roles
            and not is_untouchable(role.name)
            and (role.comment or "").startswith(MANAGED_MARK)
        )
        return cls(spec, cluster.major, retired)

    @property
    def remove(self) -> bool:
        return self.spec.unmanaged == "remove"

    def is_ours(self, role: str) -> bool:
        return role in self.spec.roles or role in self.retired

    def unwanted(self, holder: str, revoke: Statement, out: Outcome) -> None:
        """Something ``holder`` has that the spec does not give it.

        PUBLIC and pgfortress's roles lose it when the spec says
        ``unmanaged: remove``; otherwise, and for roles pgfortress does not
        manage, it is reported with the statement that would remove it.
        """
        if is_untouchable(holder):
            return
        where = f"database {revoke.database}: " if revoke.database else ""
        if holder != PUBLIC and not self.is_ours(holder):
            out.reports.append(
                f"{where}{holder} is not managed by pgfortress, so this is left "
                f"alone: {revoke.display}"
            )
        elif self.remove:
            out.statements.append(revoke)
        else:
            out.reports.append(
                f"{where}not in the spec, kept because unmanaged is report: "
                f"{revoke.display}"
            )
