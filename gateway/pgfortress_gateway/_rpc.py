"""``/rpc/<function>``: a call with named arguments, its result as JSON text."""

from __future__ import annotations

from psycopg import sql

from pgfortress_gateway._nodes import RpcRequest
from pgfortress_gateway._render import (
    Params,
    aggregate,
    cast_type,
    conditions,
    inner_joins,
    json_text,
    limit_offset,
    order_by,
    select_list,
)
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import Function, Parameter, SchemaCache

__all__ = ["rpc_body"]

_TOP = "pgf_0"


def rpc_body(
    request: RpcRequest, cache: SchemaCache, max_rows: int, params: Params
) -> sql.Composable:
    """Call with named arguments; sets become a JSON array, scalars ``to_json``.

    Placeholders are numbered in the order they appear in the text, so the
    pieces are built in that order: the selected columns (whose embeds may
    hold values) before the call's arguments, the filters and the paging."""
    function = cache.functions[request.function]
    returned = cache.returned_relation(function)
    columns: sql.Composable = sql.SQL("*")
    if returned is not None:
        columns = select_list(request.select, _TOP, cache, params)
    call = _call(request, function, cache, params)
    if function.return_type == "void":
        void = sql.SQL("(SELECT 'null'::text FROM {} AS {})")
        return void.format(call, sql.Identifier(_TOP))
    if not function.returns_set:
        return sql.SQL("to_json({})::text").format(call)
    where: sql.Composable = sql.SQL("")
    if returned is not None:
        found = conditions(request.filters, returned, _TOP, params)
        found += inner_joins(request.select, _TOP, cache, params)
        if found:
            where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(found)
    limit = max_rows if request.limit is None else min(request.limit, max_rows)
    paging = order_by(request.order, _TOP) + limit_offset(limit, request.offset, params)
    if returned is not None or function.return_type == "record":
        page = sql.SQL("SELECT {} FROM {} AS {}").format(
            columns, call, sql.Identifier(_TOP)
        )
        return aggregate(page + where + paging)
    page = sql.SQL("SELECT {}.pgf_value FROM {} AS {}(pgf_value)").format(
        sql.Identifier(_TOP), call, sql.Identifier(_TOP)
    )
    return sql.SQL(
        "(SELECT coalesce(json_agg(pgf_page.pgf_value), '[]')::text"
        " FROM ({}) AS pgf_page)"
    ).format(page + paging)


def _call(
    request: RpcRequest, function: Function, cache: SchemaCache, params: Params
) -> sql.Composable:
    types = function.parameters_by_name
    arguments = [
        sql.SQL("{} := {}").format(
            sql.Identifier(name),
            _argument(types[name], value, params, textual=request.textual),
        )
        for name, value in request.arguments
    ]
    return sql.SQL("{}({})").format(
        sql.Identifier(cache.schema, function.name), sql.SQL(", ").join(arguments)
    )


def _argument(
    parameter: Parameter, value: object, params: Params, *, textual: bool
) -> sql.Composable:
    """A value as a text parameter cast to the argument's type.

    Query-string text is cast as written (``{a,b}`` to ``text[]``, ``{"k":1}``
    to ``jsonb``); a JSON value is first turned into the text PostgreSQL reads
    for the type."""
    kind = cast_type(parameter.type)
    if textual and isinstance(value, str):
        return sql.SQL("{}::{}").format(params.add(value), kind)
    if parameter.type in ("json", "jsonb"):
        return sql.SQL("{}::{}").format(params.add(json_text(value)), kind)
    if isinstance(value, list) and parameter.type.endswith("[]"):
        return sql.SQL("ARRAY(SELECT json_array_elements_text({}::json))::{}").format(
            params.add(json_text(value)), kind
        )
    if isinstance(value, dict | list):
        raise RequestError(f"argument {parameter.name[:60]!r} takes a plain value")
    if isinstance(value, bool):
        text: str | None = "true" if value else "false"
    elif value is None or isinstance(value, str):
        text = value
    else:
        text = json_text(value)
    return sql.SQL("{}::{}").format(params.add(text), kind)
