"""Turn planned statements into one psql script, grouped per database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..catalog_reads import conninfo

__all__ = ["PlannedStatement", "psql_script", "start_database"]


class PlannedStatement(Protocol):
    """What the script needs of a statement: where it runs and its text."""

    @property
    def database(self) -> str | None: ...

    @property
    def sql(self) -> str: ...


# Statements PostgreSQL refuses inside a transaction block.
_OUTSIDE_TRANSACTION = ("CREATE DATABASE", "DROP DATABASE", "ALTER SYSTEM")


def psql_script(
    statements: Sequence[PlannedStatement],
    admin_db: str = "postgres",
    connected_to: str | None = None,
) -> str:
    """A script that stops at the first error, in transactions where allowed.

    Cluster-level statements (``database`` None) run first, connected to
    ``admin_db``; then each database's statements. Order is kept; consecutive
    statements share one transaction, and a statement PostgreSQL refuses in a
    transaction (CREATE DATABASE) runs on its own between them.

    ``connected_to`` is the database psql starts in (best
    :func:`start_database`): statements for it that come first need no
    ``\\connect``, which would open a second connection to the same database.
    """
    groups = _groups(statements)
    lines = ["\\set ON_ERROR_STOP on"]
    for number, database in enumerate(groups):
        target = database or admin_db
        if number > 0 or target != connected_to:
            # As a connection string: \connect reads a name with "=" as one.
            lines.append(f"\\connect {_meta_quote(conninfo(target))}")
        lines += _transactions(groups[database])
    return "\n".join(lines) + "\n"


def start_database(
    statements: Sequence[PlannedStatement], admin_db: str = "postgres"
) -> str:
    """Where psql best starts for :func:`psql_script`: the database its first
    statements run in (``admin_db`` for cluster-level ones, or with none).

    That database exists before the script runs: one the plan creates is
    created by a cluster-level statement, and those come first.
    """
    groups = _groups(statements)
    first = next(iter(groups), None)
    return first or admin_db


def _groups(statements: Sequence[PlannedStatement]) -> dict[str | None, list[str]]:
    """Each database's statements (None: the cluster's), cluster first."""
    groups: dict[str | None, list[str]] = {}
    for statement in statements:
        groups.setdefault(statement.database, []).append(statement.sql.rstrip(";"))
    order = sorted(groups, key=lambda name: name is not None)
    return {name: groups[name] for name in order}


def _transactions(statements: list[str]) -> list[str]:
    lines: list[str] = []
    batch: list[str] = []
    for sql in [*statements, ""]:
        if sql and not sql.startswith(_OUTSIDE_TRANSACTION):
            batch.append(f"{sql};")
            continue
        if batch:
            lines += ["BEGIN;", *batch, "COMMIT;"]
            batch = []
        if sql:
            lines.append(f"{sql};")
    return lines


def _meta_quote(name: str) -> str:
    # psql meta-command arguments: single quotes, with \\ and ' escaped.
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
