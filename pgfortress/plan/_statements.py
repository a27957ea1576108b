"""Planned SQL statements and the few ways this package names objects in SQL.

Every statement is composed with :mod:`psycopg.sql` and rendered without a
connection. A statement carries two texts: ``sql``, which may hold a password
verifier, and ``display``, which never does and is what logs and reprs show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import sql

__all__ = [
    "MASK",
    "Statement",
    "identifier",
    "integer",
    "objects_clause",
    "split_function",
    "statement",
]

MASK = "********"

# How GRANT and REVOKE spell each kind of object. Functions are ROUTINEs so the
# same text also works for procedures and aggregates.
_KEYWORDS = {
    "database": "DATABASE",
    "schema": "SCHEMA",
    "table": "TABLE",
    "sequence": "SEQUENCE",
    "function": "ROUTINE",
}


@dataclass(frozen=True)
class Statement:
    """One SQL statement, and where it runs.

    ``database`` None means cluster-wide (run connected to the maintenance
    database). ``sql`` is left out of ``repr`` because it may hold a password
    verifier; ``display`` is the same statement with any secret masked.
    """

    database: str | None
    sql: str = field(repr=False)
    display: str

    def __str__(self) -> str:
        return self.display


def statement(
    database: str | None, query: sql.Composable, masked: sql.Composable | None = None
) -> Statement:
    """Render ``query``; ``masked`` is the displayable form when it holds a secret."""
    text = query.as_string(None)
    shown = text if masked is None else masked.as_string(None)
    return Statement(database, text, shown)


def identifier(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def integer(value: int) -> sql.SQL:
    # Literal() renders negative numbers with a leading space; an int has no
    # quoting to get wrong, so it is written as it is.
    return sql.SQL(str(int(value)))


def objects_clause(
    kind: str, objects: Sequence[tuple[str | None, str]]
) -> sql.Composed:
    """``TABLE "s"."a", "s"."b"`` for GRANT and REVOKE; one kind per clause."""
    targets = sql.SQL(", ").join(
        _target(kind, schema, name) for schema, name in objects
    )
    return sql.SQL("{} {}").format(sql.SQL(_KEYWORDS[kind]), targets)


def _target(kind: str, schema: str | None, name: str) -> sql.Composable:
    if kind == "function":
        proname, args = split_function(name)
        # The argument list comes from the server's own catalog output
        # (pg_get_function_identity_arguments), which is valid SQL as printed.
        return sql.SQL("{}.{}({})").format(
            sql.Identifier(schema or ""), sql.Identifier(proname), sql.SQL(args)
        )
    if schema is None:
        return sql.Identifier(name)
    return sql.Identifier(schema, name)


def split_function(name: str) -> tuple[str, str]:
    """``touch(p integer)`` → (``touch``, ``p integer``)."""
    proname, _, rest = name.partition("(")
    return proname, rest.removesuffix(")")
