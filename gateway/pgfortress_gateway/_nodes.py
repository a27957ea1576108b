"""The typed shape of a parsed request: what ``grammar`` produces, ``sql`` consumes.

Every name held here has already been checked against the schema cache, so the
SQL builders only need to quote them, never to look them up again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pgfortress_gateway.schema import ForeignKey

__all__ = [
    "Condition",
    "DeleteRequest",
    "Embed",
    "Field",
    "Filter",
    "InsertRequest",
    "Logic",
    "Operator",
    "Order",
    "Preferences",
    "ReadRequest",
    "Resolution",
    "Returning",
    "RpcRequest",
    "SelectItem",
    "UpdateRequest",
]

Operator: TypeAlias = Literal[
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "like",
    "ilike",
    "match",
    "imatch",
    "in",
    "is",
    "isdistinct",
    "cs",
    "cd",
    "ov",
    "sl",
    "sr",
    "nxl",
    "nxr",
    "adj",
    "fts",
    "plfts",
    "phfts",
    "wfts",
]
Returning: TypeAlias = Literal["minimal", "headers-only", "representation"]
Resolution: TypeAlias = Literal["merge-duplicates", "ignore-duplicates"]


@dataclass(frozen=True)
class Filter:
    """``column op value``; ``value`` is a tuple for ``in``, a keyword for ``is``.

    For ``like``/``ilike`` the PostgREST wildcard ``*`` is already turned into ``%``.
    ``config`` is the text search configuration of a full-text operator, as in
    ``fts(english).cat``; it is a name the database resolves, bound as a value.
    """

    column: str
    operator: Operator
    value: str | tuple[str, ...]
    negated: bool = False
    config: str | None = None


@dataclass(frozen=True)
class Logic:
    """``and``/``or`` over nested conditions, as in ``or=(a.eq.1,b.gt.2)``."""

    operator: Literal["and", "or"]
    conditions: tuple[Condition, ...]
    negated: bool = False


Condition: TypeAlias = Filter | Logic


@dataclass(frozen=True)
class Order:
    column: str
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


@dataclass(frozen=True)
class Field:
    """One selected column (``*`` for all of them) and the key it gets in JSON."""

    column: str
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias or self.column


@dataclass(frozen=True)
class Embed:
    """A related relation nested into each row, following one foreign key.

    ``to_many`` is true when ``foreign_key`` belongs to ``relation`` and points
    back at the parent (one-to-many: a JSON array); false when it belongs to the
    parent (many-to-one: a JSON object or null). ``inner`` drops parent rows
    that have no related row, like PostgREST's ``!inner``.
    """

    relation: str
    foreign_key: ForeignKey
    to_many: bool
    select: tuple[SelectItem, ...]
    alias: str | None = None
    filters: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0
    inner: bool = False

    @property
    def key(self) -> str:
        return self.alias or self.relation


SelectItem: TypeAlias = Field | Embed


@dataclass(frozen=True)
class Preferences:
    """What the ``Prefer`` header asked for; unknown preferences are ignored.

    ``resolution`` makes an insert an upsert; ``missing_default`` gives a
    column a row leaves out its DEFAULT rather than NULL."""

    returning: Returning = "minimal"
    count: bool = False
    resolution: Resolution | None = None
    missing_default: bool = False


@dataclass(frozen=True)
class ReadRequest:
    """``singular``: the client asked for one JSON object, not an array
    (``Accept: application/vnd.pgrst.object+json``); exactly one row must match."""

    relation: str
    select: tuple[SelectItem, ...]
    filters: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0
    prefer: Preferences = Preferences()
    singular: bool = False


@dataclass(frozen=True)
class InsertRequest:
    """Rows keep only the keys named in ``columns`` (all of them are columns).

    ``on_conflict`` is the upsert's conflict target (the primary key unless
    named), set only when ``prefer.resolution`` is."""

    relation: str
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, object], ...]
    select: tuple[SelectItem, ...]
    prefer: Preferences = Preferences()
    on_conflict: tuple[str, ...] = ()
    singular: bool = False

    def batches(self) -> list[tuple[tuple[str, ...], list[Mapping[str, object]]]]:
        """The rows in groups that each name the same columns, in ``columns``'
        order, groups in the order they first appear.

        Without ``missing=default`` there is one group naming every column: a
        key a row leaves out is NULL. With it, each group is inserted naming
        only its own columns, so PostgreSQL gives the others their DEFAULT,
        while a key given as null stays NULL."""
        if not self.prefer.missing_default:
            return [(self.columns, list(self.rows))]
        groups: dict[tuple[str, ...], list[Mapping[str, object]]] = {}
        for row in self.rows:
            named = tuple(c for c in self.columns if c in row)
            groups.setdefault(named, []).append(row)
        return list(groups.items())


@dataclass(frozen=True)
class UpdateRequest:
    """``singular``, as on every write: the client asked for one object, so
    the change must touch exactly one row or be undone."""

    relation: str
    values: Mapping[str, object]
    filters: tuple[Condition, ...]
    select: tuple[SelectItem, ...]
    prefer: Preferences = Preferences()
    singular: bool = False


@dataclass(frozen=True)
class DeleteRequest:
    relation: str
    filters: tuple[Condition, ...]
    select: tuple[SelectItem, ...]
    prefer: Preferences = Preferences()
    singular: bool = False


@dataclass(frozen=True)
class RpcRequest:
    """Arguments in call order: JSON values from a body, or, when ``textual``,
    the query string's text (a list of texts for a repeated array argument).

    ``select``, ``filters`` and ``order`` apply to the rows of a function that
    returns a set of a relation's rows; ``singular`` asks for its one row."""

    function: str
    arguments: tuple[tuple[str, object], ...]
    limit: int | None = None
    offset: int = 0
    select: tuple[SelectItem, ...] = ()
    filters: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    textual: bool = False
    singular: bool = False
