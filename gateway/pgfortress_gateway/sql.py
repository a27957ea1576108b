"""Parsed requests turned into one SQL statement each, composed with psycopg.sql.

Every statement answers exactly one row, so the caller reads them the same
way whatever the request:

``body``
    the JSON text to send back (built by PostgreSQL), or NULL when the client
    asked for ``Prefer: return=minimal``;
``total``
    ``count=exact`` on a read, the number of rows written on a write with
    ``return=representation|headers-only``, otherwise NULL;
``returned``
    reads only: the number of rows in ``body``.

Names come only from the catalog check in :mod:`grammar` and go through
``sql.Identifier``; values are always bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.sql import Composed

from pgfortress_gateway._nodes import (
    DeleteRequest,
    Field,
    InsertRequest,
    ReadRequest,
    RpcRequest,
    UpdateRequest,
)
from pgfortress_gateway._render import (
    Params,
    aggregate,
    conditions,
    inner_joins,
    json_text,
    limit_offset,
    order_by,
    select_list,
)
from pgfortress_gateway._rpc import rpc_body
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import SchemaCache

__all__ = [
    "Query",
    "build_delete",
    "build_insert",
    "build_read",
    "build_rpc",
    "build_update",
    "refusal",
]

_TOP = "pgf_0"  # the alias of the requested relation (or of the written rows)
# A write that must answer one object (Accept: application/vnd.pgrst.object+json)
# and touched another number of rows has to be undone, as in PostgREST. The
# gateway sends the statement and the commit together (database.py: one
# pipeline, one implicit transaction), so it cannot look at the count and
# then choose to roll back: the statement itself must fail, which aborts the
# transaction. It does so with no function of its own (none exists in every
# database): when the count is not 1, it casts "pgf-single-object:<count>" to
# bigint. That cast always fails, with invalid_text_representation, and the
# text is quoted verbatim in the message whatever the server's language; the
# count is not a constant, so the planner cannot fold the cast and fail a
# statement that touched one row. refusal() recognises the marker and answers
# 406. A client could provoke the same error by filtering on that very text,
# and would get a 406 instead of a 400 for a statement that was undone anyway.
_SINGLE = "pgf-single-object:"
_SINGLE_COUNT = re.compile(re.escape(_SINGLE) + "([0-9]+)")
_TARGET = "pgf_target"  # the relation an INSERT/UPDATE/DELETE writes to
_BODY = "pgf_body"  # the JSON body seen as a record of the relation's type


@dataclass(frozen=True)
class Query:
    sql: Composed
    params: tuple[object, ...]


def build_read(request: ReadRequest, cache: SchemaCache, max_rows: int) -> Query:
    """``body`` is the JSON array of the page; ``total`` the count, if asked."""
    params = Params()
    table = sql.Identifier(cache.schema, request.relation)
    columns = select_list(request.select, _TOP, cache, params)
    where = _where(request, params, cache)
    limit = max_rows if request.limit is None else min(request.limit, max_rows)
    page = sql.SQL("SELECT {} FROM {} AS {}{}{}{}").format(
        columns,
        table,
        sql.Identifier(_TOP),
        where,
        order_by(request.order, _TOP),
        limit_offset(limit, request.offset, params),
    )
    total: sql.Composable = sql.SQL("NULL::bigint")
    if request.prefer.count:
        total = sql.SQL("(SELECT count(*) FROM {} AS {}{})").format(
            table, sql.Identifier(_TOP), _where(request, params, cache)
        )
    # PostgreSQL counts the page while it builds it: the gateway needs the
    # number for Content-Range and should not parse the body to learn it.
    # The page comes before the total in the text as in ``params``: each
    # placeholder takes the next value, so the order must be the same.
    answer = sql.SQL(
        "SELECT pgf_agg.body AS body, pgf_total.total AS total,"
        " pgf_agg.returned AS returned"
        " FROM (SELECT coalesce(json_agg(pgf_page.*), '[]')::text AS body,"
        " count(*) AS returned FROM ({}) AS pgf_page) AS pgf_agg,"
        " LATERAL (SELECT {} AS total) AS pgf_total"
    )
    return _finish(answer.format(page, total), params)


def build_insert(request: InsertRequest, cache: SchemaCache) -> Query:
    """One INSERT per batch of rows naming the same columns (one, unless
    ``missing=default``), each with the upsert's ON CONFLICT clause."""
    params = Params()
    table = sql.Identifier(cache.schema, request.relation)
    conflict = _on_conflict(request)
    writes: list[sql.Composable] = []
    for columns, rows in request.batches():
        names = [sql.Identifier(c) for c in columns]
        taken = [sql.SQL("{}.{}").format(sql.Identifier(_BODY), n) for n in names]
        listed = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(names)) if names else sql.SQL("")
        )
        write = sql.SQL(
            "INSERT INTO {} AS {}{} SELECT {}"
            " FROM json_populate_recordset(NULL::{}, {}::json) AS {}{}"
        ).format(
            table,
            sql.Identifier(_TARGET),
            listed,
            sql.SQL(", ").join(taken),
            table,
            params.add(json_text([dict(row) for row in rows])),
            sql.Identifier(_BODY),
            conflict,
        )
        writes.append(write)
    return _written(writes, request, cache, params)


def _on_conflict(request: InsertRequest) -> sql.Composable:
    """``ON CONFLICT (key) DO NOTHING`` or ``DO UPDATE SET`` every named column
    to the proposed row's value, as PostgREST does: a column the row leaves
    out takes its DEFAULT (``missing=default``) or NULL there too."""
    if request.prefer.resolution is None:
        return sql.SQL("")
    target = sql.SQL(", ").join(sql.Identifier(c) for c in request.on_conflict)
    if request.prefer.resolution == "ignore-duplicates" or not request.columns:
        return sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(target)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
        for c in request.columns
    )
    return sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(target, assignments)


def build_update(request: UpdateRequest, cache: SchemaCache) -> Query:
    params = Params()
    table = sql.Identifier(cache.schema, request.relation)
    assignments = [
        sql.SQL("{} = {}.{}").format(
            sql.Identifier(c), sql.Identifier(_BODY), sql.Identifier(c)
        )
        for c in request.values
    ]
    write = sql.SQL(
        "UPDATE {} AS {} SET {} FROM json_populate_record(NULL::{}, {}::json) AS {}"
    ).format(
        table,
        sql.Identifier(_TARGET),
        sql.SQL(", ").join(assignments),
        table,
        params.add(json_text(dict(request.values))),
        sql.Identifier(_BODY),
    )
    relation = cache.relations[request.relation]
    found = conditions(request.filters, relation, _TARGET, params)
    write += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(found)
    return _written([write], request, cache, params)


def build_delete(request: DeleteRequest, cache: SchemaCache) -> Query:
    params = Params()
    relation = cache.relations[request.relation]
    found = conditions(request.filters, relation, _TARGET, params)
    write = sql.SQL("DELETE FROM {} AS {} WHERE {}").format(
        sql.Identifier(cache.schema, request.relation),
        sql.Identifier(_TARGET),
        sql.SQL(" AND ").join(found),
    )
    return _written([write], request, cache, params)


def build_rpc(request: RpcRequest, cache: SchemaCache, max_rows: int) -> Query:
    """Call with named arguments; sets become a JSON array, scalars ``to_json``."""
    params = Params()
    body = rpc_body(request, cache, max_rows, params)
    if request.singular:  # a set, as JSON array text: exactly one element
        answer = sql.SQL(
            "SELECT pgf_call.body AS body, {} AS total FROM (SELECT {} AS body) "
            "AS pgf_call"
        )
        count = sql.SQL("json_array_length(pgf_call.body::json)")
        return _finish(answer.format(_single(count), body), params)
    answer = sql.SQL("SELECT {} AS body, NULL::bigint AS total")
    return _finish(answer.format(body), params)


def _where(request: ReadRequest, params: Params, cache: SchemaCache) -> sql.Composable:
    relation = cache.relations[request.relation]
    found = conditions(request.filters, relation, _TOP, params)
    found += inner_joins(request.select, _TOP, cache, params)
    if not found:
        return sql.SQL("")
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(found)


def _written(
    writes: list[sql.Composable],
    request: InsertRequest | UpdateRequest | DeleteRequest,
    cache: SchemaCache,
    params: Params,
) -> Query:
    """Wrap the writes in CTEs and shape their answer after ``Prefer: return=``.

    One write is ``pgf_0`` itself; several (the batches of an insert) are
    ``pgf_write_1``, ``pgf_write_2``… and ``pgf_0`` is their rows one after
    the other. A write that must answer one object is counted even when
    nothing is returned, and undone unless it touched one row."""
    prefer, select = request.prefer, request.select
    top = sql.Identifier(_TOP)
    if prefer.returning == "minimal" and not request.singular:
        statement = sql.SQL("WITH {} SELECT NULL::text AS body, NULL::bigint AS total")
        return _finish(statement.format(_ctes(writes, None)), params)
    returning: sql.Composable
    if prefer.returning == "minimal":
        returning = sql.SQL("1")
    elif prefer.returning == "headers-only":
        key = cache.relations[request.relation].primary_key
        select = tuple(Field(column) for column in key)
        returned = [
            sql.SQL("{}.{}").format(sql.Identifier(_TARGET), sql.Identifier(c))
            for c in key
        ]
        returning = sql.SQL(", ").join(returned) if key else sql.SQL("1")
    else:
        returning = sql.SQL("{}.*").format(sql.Identifier(_TARGET))
    body: sql.Composable = sql.SQL("NULL::text")
    if prefer.returning != "minimal":
        rows = sql.SQL("SELECT {} FROM {}").format(
            select_list(select, _TOP, cache, params), top
        )
        body = aggregate(rows)
    count: sql.Composable = sql.SQL("count(*)")
    if request.singular:
        count = _single(count)
    answer = sql.SQL("WITH {} SELECT {} AS body, (SELECT {} FROM {}) AS total")
    return _finish(answer.format(_ctes(writes, returning), body, count, top), params)


def _single(count: sql.Composable) -> sql.Composable:
    """``count`` if it is 1, else the failing cast that undoes the statement
    (see the comment at :data:`_SINGLE`)."""
    return sql.SQL(
        "CASE WHEN {count} = 1 THEN {count} ELSE ({marker} || {count})::bigint END"
    ).format(count=count, marker=sql.Literal(_SINGLE))


def _ctes(
    writes: list[sql.Composable], returning: sql.Composable | None
) -> sql.Composable:
    """``pgf_0 AS (write RETURNING …)``, or one CTE per write and ``pgf_0``
    their union; without ``returning`` nothing is read back."""
    ending = (
        sql.SQL("") if returning is None else sql.SQL(" RETURNING {}").format(returning)
    )
    if len(writes) == 1:
        return sql.SQL("{} AS ({}{})").format(sql.Identifier(_TOP), writes[0], ending)
    names = [sql.Identifier(f"pgf_write_{n}") for n in range(1, len(writes) + 1)]
    ctes = [
        sql.SQL("{} AS ({}{})").format(name, write, ending)
        for name, write in zip(names, writes, strict=True)
    ]
    if returning is not None:
        union = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT * FROM {}").format(name) for name in names
        )
        ctes.append(sql.SQL("{} AS ({})").format(sql.Identifier(_TOP), union))
    return sql.SQL(", ").join(ctes)


def _finish(statement: sql.Composable, params: Params) -> Query:
    composed = statement if isinstance(statement, Composed) else Composed([statement])
    return Query(composed, tuple(params.values))


def refusal(error: BaseException) -> RequestError | None:
    """The answer to a database error that only the request can have caused,
    for the errors the database layer passes on unmapped; None for the others.

    An unknown text search configuration in ``fts(klingon).x`` is bound as a
    ``regconfig`` value, so PostgreSQL refuses it with ``undefined_object``.
    An upsert whose body holds one key twice would make ``ON CONFLICT DO
    UPDATE`` change a row twice (``cardinality_violation``). A write that had
    to answer one object fails on purpose when it touched another number of
    rows (see :data:`_SINGLE`); that is a 406. The error may
    arrive as it is or as the cause of a mapped error; the server's text is
    never repeated.
    """
    cause = error if isinstance(error, psycopg.Error) else error.__cause__
    if isinstance(cause, psycopg.errors.UndefinedObject):
        return RequestError(
            "the request names something the database does not know, "
            "such as a text search configuration"
        )
    if isinstance(cause, psycopg.errors.CardinalityViolation):
        return RequestError(
            "one row would be changed twice: the body holds the same key twice"
        )
    if isinstance(cause, psycopg.errors.InvalidTextRepresentation):
        found = _SINGLE_COUNT.search(cause.diag.message_primary or str(cause))
        if found is not None:
            return RequestError(
                f"a single JSON object was asked for, but {found.group(1)} rows "
                "matched; nothing was changed",
                status=406,
            )
    return None
