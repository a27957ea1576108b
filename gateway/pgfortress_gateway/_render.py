"""Pieces of SQL shared by the builders: casts, conditions and select lists.

Filter values travel as text parameters cast to the column's type,
``"price" > %s::numeric``, never the other way round (``"price"::text > %s``):
the column stays bare, so its indexes and the planner's statistics still apply,
and PostgreSQL itself rejects a value that is not valid for the type. The type
name comes from the catalog (``format_type``); it is still parsed against a
strict pattern before it reaches ``sql.SQL``, with quoted parts re-quoted
through ``sql.Identifier``. Type modifiers are dropped from casts because a
cast to ``varchar(3)`` or ``numeric(5,2)`` would truncate or round the value
and make ``eq`` match rows it should not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from psycopg import sql

from pgfortress_gateway._nodes import Condition, Embed, Field, Filter, Order, SelectItem
from pgfortress_gateway.errors import PayloadError, RequestError
from pgfortress_gateway.schema import Column, Relation, SchemaCache

__all__ = [
    "Params",
    "aggregate",
    "cast_type",
    "column_ref",
    "conditions",
    "inner_joins",
    "json_text",
    "limit_offset",
    "order_by",
    "select_list",
]

_IDENT = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")'
_TYPE = re.compile(
    rf"(?:(?P<schema>{_IDENT})\.)?"
    rf'(?P<name>[a-z_][a-z0-9_$]*(?: [a-z_][a-z0-9_$]*)*|"(?:[^"]|"")+")'
    r"(?P<array>(?:\[\])*)"
)
_TYPMOD = re.compile(r"\([0-9]+(?:,[0-9]+)?\)")
_WITHOUT_TYPMOD = {"character": "bpchar", "bit": "varbit"}
_TEXTUAL = frozenset(("text", "character varying", "character", "citext", "name"))
_COMPARE = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "isdistinct": "IS DISTINCT FROM",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_PATTERN = {"like": "LIKE", "ilike": "ILIKE", "match": "~", "imatch": "~*"}
_TSQUERY = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}


class Params:
    """Collects bound values in the order their placeholders are rendered.

    A tuple (the values of ``in``) is bound as a list, which psycopg sends as
    an array; the values may also be the slots of :mod:`.statements`, which
    stand for a request's values while its statement is composed once.
    """

    def __init__(self) -> None:
        self.values: list[object] = []

    def add(self, value: object) -> sql.Placeholder:
        self.values.append(list(value) if isinstance(value, tuple) else value)
        return sql.Placeholder()


def cast_type(type_name: str) -> sql.Composable:
    """Render a catalog type name for a cast, or refuse it."""
    bare = type_name if '"' in type_name else _TYPMOD.sub("", type_name)
    match = _TYPE.fullmatch(bare)
    if match is None:
        raise RequestError(f"filtering on the type {type_name[:60]!r} is not supported")
    parts: list[sql.Composable] = []
    if match["schema"]:
        parts += [_ident(match["schema"]), sql.SQL(".")]
    name = match["name"]
    if name.startswith('"'):
        parts.append(_ident(name))
    else:
        parts.append(sql.SQL(_WITHOUT_TYPMOD.get(name, name)))
    parts.append(sql.SQL(match["array"]))
    return sql.Composed(parts)


def column_ref(alias: str, column: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))


def conditions(
    items: Sequence[Condition], relation: Relation, alias: str, params: Params
) -> list[sql.Composable]:
    return [_condition(item, relation, alias, params) for item in items]


def order_by(terms: Sequence[Order], alias: str) -> sql.Composable:
    if not terms:
        return sql.SQL("")
    rendered = []
    for term in terms:
        text = " DESC" if term.descending else " ASC"
        if term.nulls:
            text += f" NULLS {term.nulls.upper()}"
        rendered.append(column_ref(alias, term.column) + sql.SQL(text))
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(rendered)


def select_list(
    items: Sequence[SelectItem],
    alias: str,
    cache: SchemaCache,
    params: Params,
    depth: int = 0,
) -> sql.Composable:
    """The columns of one level; embeds become correlated subqueries."""
    rendered: list[sql.Composable] = []
    for item in items:
        if isinstance(item, Field):
            if item.column == "*":
                rendered.append(sql.SQL("{}.*").format(sql.Identifier(alias)))
            else:
                rendered.append(
                    sql.SQL("{} AS {}").format(
                        column_ref(alias, item.column), sql.Identifier(item.key)
                    )
                )
        elif item.select:
            sub = embed_subquery(item, alias, cache, params, depth + 1)
            rendered.append(sql.SQL("{} AS {}").format(sub, sql.Identifier(item.key)))
    return sql.SQL(", ").join(rendered)


EMBED_MAX_ROWS = 1000


def embed_subquery(
    embed: Embed, parent: str, cache: SchemaCache, params: Params, depth: int
) -> sql.Composable:
    """``(SELECT json_agg(...) FROM (...))`` for one embedded relation."""
    alias, row = f"pgf_{depth}", f"pgf_row_{depth}"
    columns = select_list(embed.select, alias, cache, params, depth)
    join = embed_where(embed, parent, alias, cache, params)
    tests = inner_joins(embed.select, alias, cache, params, depth)
    where = sql.SQL(" AND ").join([join, *tests])
    # Embedded rows are capped too: without it one request could multiply a
    # response far past max_rows through a wide or nested embedding.
    cap = embed.limit
    if embed.to_many:
        cap = EMBED_MAX_ROWS if cap is None else min(cap, EMBED_MAX_ROWS)
    limit = limit_offset(cap, embed.offset, params)
    source = sql.SQL("SELECT {} FROM {} AS {} WHERE {}{}{}").format(
        columns,
        sql.Identifier(cache.schema, embed.relation),
        sql.Identifier(alias),
        where,
        order_by(embed.order, alias),
        limit,
    )
    if embed.to_many:
        shape = sql.SQL("coalesce(json_agg({}.*), '[]')")
    else:
        shape = sql.SQL("row_to_json({}.*)")
    return sql.SQL("(SELECT {} FROM ({}) AS {})").format(
        shape.format(sql.Identifier(row)), source, sql.Identifier(row)
    )


def embed_where(
    embed: Embed, parent: str, alias: str, cache: SchemaCache, params: Params
) -> sql.Composable:
    """The join condition of an embed, and its own filters."""
    fk = embed.foreign_key
    if embed.to_many:  # the key is on the embedded rows, pointing at the parent
        pairs = zip(fk.columns, fk.target_columns, strict=True)
    else:
        pairs = zip(fk.target_columns, fk.columns, strict=True)
    joined: list[sql.Composable] = [
        sql.SQL("{} = {}").format(column_ref(alias, mine), column_ref(parent, theirs))
        for mine, theirs in pairs
    ]
    relation = cache.relations[embed.relation]
    joined += conditions(embed.filters, relation, alias, params)
    return sql.SQL(" AND ").join(joined)


def inner_joins(
    items: Sequence[SelectItem],
    alias: str,
    cache: SchemaCache,
    params: Params,
    depth: int = 0,
) -> list[sql.Composable]:
    """``EXISTS`` tests that keep only parents having an ``!inner`` embed."""
    tests: list[sql.Composable] = []
    for item in items:
        if isinstance(item, Embed) and item.inner:
            inner = f"pgf_inner_{depth}_{len(tests)}"
            where = embed_where(item, alias, inner, cache, params)
            tests.append(
                sql.SQL("EXISTS (SELECT 1 FROM {} AS {} WHERE {})").format(
                    sql.Identifier(cache.schema, item.relation),
                    sql.Identifier(inner),
                    where,
                )
            )
    return tests


def limit_offset(limit: int | None, offset: int, params: Params) -> sql.Composable:
    text: sql.Composable = sql.SQL("")
    if limit is not None:
        text += sql.SQL(" LIMIT {}").format(params.add(limit))
    if offset:
        text += sql.SQL(" OFFSET {}").format(params.add(offset))
    return text


def _condition(
    item: Condition, relation: Relation, alias: str, params: Params
) -> sql.Composable:
    if isinstance(item, Filter):
        rendered = _filter(item, relation, alias, params)
    else:
        parts = conditions(item.conditions, relation, alias, params)
        joiner = sql.SQL(" AND ") if item.operator == "and" else sql.SQL(" OR ")
        rendered = sql.SQL("({})").format(joiner.join(parts))
    return sql.SQL("NOT ({})").format(rendered) if item.negated else rendered


def _filter(
    item: Filter, relation: Relation, alias: str, params: Params
) -> sql.Composable:
    ref = column_ref(alias, item.column)
    column_type = relation.columns[item.column].type
    if item.operator == "is":
        assert isinstance(item.value, str)
        return ref + sql.SQL(f" IS {_IS[item.value]}")
    if item.operator in _PATTERN:
        textual = _TYPMOD.sub("", column_type) in _TEXTUAL
        left = ref if textual else ref + sql.SQL("::text")
        keyword = sql.SQL(f" {_PATTERN[item.operator]} ")
        return left + keyword + params.add(item.value)
    if item.operator in _TSQUERY:
        return _full_text(item, ref, relation.columns[item.column], params)
    if item.operator == "in":
        return sql.SQL("{} = ANY({}::{}[])").format(
            ref, params.add(item.value), cast_type(column_type)
        )
    return sql.SQL("{} {} {}::{}").format(
        ref,
        sql.SQL(_COMPARE[item.operator]),
        params.add(item.value),
        cast_type(column_type),
    )


def _full_text(
    item: Filter, ref: sql.Composable, column: Column, params: Params
) -> sql.Composable:
    """``document @@ to_tsquery([config,] query)``.

    A tsvector column is the document itself; text and json columns go
    through ``to_tsvector`` with the same configuration. The configuration is
    a bound ``regconfig`` value: PostgreSQL looks the name up, and an unknown
    one is an error, not a name written into the statement.
    """
    query = sql.SQL(_TSQUERY[item.operator])
    document = ref
    if item.config is None:
        if column.type != "tsvector":
            document = sql.SQL("to_tsvector({})").format(ref)
        return sql.SQL("{} @@ {}({})").format(document, query, params.add(item.value))
    if column.type != "tsvector":
        document = sql.SQL("to_tsvector({}::regconfig, {})").format(
            params.add(item.config), ref
        )
    return sql.SQL("{} @@ {}({}::regconfig, {})").format(
        document, query, params.add(item.config), params.add(item.value)
    )


def _ident(text: str) -> sql.Identifier:
    if text.startswith('"'):
        return sql.Identifier(text[1:-1].replace('""', '"'))
    return sql.Identifier(text)


def aggregate(page: sql.Composable) -> sql.Composed:
    return sql.SQL(
        "(SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM ({}) AS pgf_page)"
    ).format(page)


def json_text(value: object) -> str:
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise PayloadError("the body holds a value JSON cannot carry") from error
    except RecursionError:
        raise PayloadError("the body is nested too deeply") from None
