"""Each shape of read request composed into SQL once, then reused.

Composing a statement with ``psycopg.sql`` costs more CPU than anything else
the gateway does above uvicorn and psycopg (docs/benchmarks.md), and clients
send the same few shapes over and over: ``GET /customers?id=eq.1`` and
``?id=eq.2`` differ only in a bound value. So a read is split into its
*shape*, the parsed request with every bound value replaced by a
:class:`Slot` naming its position, and the values themselves. The shape is
composed by :func:`.sql.build_read` like any request, and the text it gives
is kept with, for each placeholder, the slot it takes its value from. The
next request of that shape gets the same text and only its own values.

What keeps this as safe as composing every time:

- the key is the parsed, catalog-checked request, never the client's text:
  two requests share a statement only when their names, operators, keywords
  (``is.null``), limits and offsets are equal, and those are all that reaches
  the text; every value is still a bound parameter, taken from its slot;
- the cache belongs to one schema cache: :class:`StatementCache` is created
  afresh when the schema is reloaded, so no text outlives the catalog it was
  checked against;
- it holds at most ``size`` shapes and forgets the oldest first, so a client
  sending endless distinct shapes only makes its own requests compose again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

from psycopg import sql

from ._nodes import Condition, Embed, Filter, Logic, ReadRequest, SelectItem
from .schema import SchemaCache
from .sql import Query, build_read

__all__ = ["Slot", "StatementCache", "read_shape"]

DEFAULT_SIZE = 512


@dataclass(frozen=True)
class Slot:
    """Stands for the ``index``-th value of a request in its shape."""

    index: int


@dataclass(frozen=True)
class _Statement:
    """The composed text, and per placeholder a slot or a constant of the shape."""

    query: sql.Composed
    sources: tuple[object, ...]


class StatementCache:
    """Composed read statements of one schema cache, by request shape."""

    def __init__(
        self, cache: SchemaCache, max_rows: int, size: int = DEFAULT_SIZE
    ) -> None:
        self.cache = cache
        self._max_rows = max_rows
        self._size = size
        self._statements: dict[ReadRequest, _Statement] = {}

    def __len__(self) -> int:
        return len(self._statements)

    def read(self, request: ReadRequest) -> Query:
        """The same statement :func:`.sql.build_read` gives for ``request``."""
        shape, values = read_shape(request)
        statement = self._statements.get(shape)
        if statement is None:
            statement = self._compose(shape)
        params = tuple(
            values[source.index] if type(source) is Slot else source
            for source in statement.sources
        )
        return Query(statement.query, params)

    def _compose(self, shape: ReadRequest) -> _Statement:
        built = build_read(shape, self.cache, self._max_rows)
        text = sql.SQL(built.sql.as_string(None))
        statement = _Statement(sql.Composed([text]), built.params)
        if len(self._statements) >= self._size:
            del self._statements[next(iter(self._statements))]
        self._statements[shape] = statement
        return statement


def read_shape(request: ReadRequest) -> tuple[ReadRequest, list[object]]:
    """``request`` with its bound values replaced by slots, and those values."""
    values: list[object] = []
    if not request.filters and not any(type(i) is Embed for i in request.select):
        return request, values
    shape = replace(
        request,
        select=_select(request.select, values),
        filters=_conditions(request.filters, values),
    )
    return shape, values


def _select(
    items: tuple[SelectItem, ...], values: list[object]
) -> tuple[SelectItem, ...]:
    return tuple(_embed(i, values) if type(i) is Embed else i for i in items)


def _embed(embed: Embed, values: list[object]) -> Embed:
    return replace(
        embed,
        select=_select(embed.select, values),
        filters=_conditions(embed.filters, values),
    )


def _conditions(
    items: tuple[Condition, ...], values: list[object]
) -> tuple[Condition, ...]:
    return tuple(_condition(item, values) for item in items)


def _condition(item: Condition, values: list[object]) -> Condition:
    if isinstance(item, Logic):
        return replace(item, conditions=_conditions(item.conditions, values))
    if item.operator == "is":
        return item  # null, true, false, unknown: a keyword of the text
    config = None if item.config is None else _slot(item.config, values)
    return Filter(
        item.column,
        item.operator,
        _slot(item.value, values),
        item.negated,
        config,
    )


def _slot(value: str | tuple[str, ...], values: list[object]) -> str:
    values.append(list(value) if isinstance(value, tuple) else value)
    # The renderer only hands a filter's value to Params.add, so a slot may
    # travel where the node's type says "text".
    return cast(str, Slot(len(values) - 1))
