"""``/rpc/<function>``: a call with named arguments, its result as JSON text."""

from __future__ import annotations

from psycopg import sql

from pgfortress_gateway._nodes import RpcRequest
from pgfortress_gateway._render import (
    Params,
    aggregate,
    cast_type,
    json_text,
    limit_offset,
)
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import Function, Parameter, SchemaCache

__all__ = ["rpc_body"]

_TOP = "pgf_0"


def rpc_body(
    request: RpcRequest, cache: SchemaCache, max_rows: int, params: Params
) -> sql.Composable:
    """Call with named arguments; sets become a JSON array, scalars ``to_json``."""
    function = cache.functions[request.function]
    types = {p.name: p for p in function.parameters}
    arguments = [
        sql.SQL("{} := {}").format(
            sql.Identifier(name), _argument(types[name], value, params)
        )
        for name, value in request.arguments
    ]
    call = sql.SQL("{}({})").format(
        sql.Identifier(cache.schema, function.name), sql.SQL(", ").join(arguments)
    )
    if function.return_type == "void":
        void = sql.SQL("(SELECT 'null'::text FROM {} AS {})")
        return void.format(call, sql.Identifier(_TOP))
    if not function.returns_set:
        return sql.SQL("to_json({})::text").format(call)
    limit = max_rows if request.limit is None else min(request.limit, max_rows)
    paging = limit_offset(limit, request.offset, params)
    return _set_body(function, call, cache, paging)


def _set_body(
    function: Function, call: sql.Composable, cache: SchemaCache, paging: sql.Composable
) -> sql.Composable:
    """A set-returning call as a JSON array of objects (rows) or of values."""
    if _returns_rows(function, cache):
        page = sql.SQL("SELECT * FROM {} AS {}").format(call, sql.Identifier(_TOP))
        return aggregate(page + paging)
    page = sql.SQL("SELECT {}.pgf_value FROM {} AS {}(pgf_value)").format(
        sql.Identifier(_TOP), call, sql.Identifier(_TOP)
    )
    return sql.SQL(
        "(SELECT coalesce(json_agg(pgf_page.pgf_value), '[]')::text"
        " FROM ({}) AS pgf_page)"
    ).format(page + paging)


def _returns_rows(function: Function, cache: SchemaCache) -> bool:
    """Whether each result row is a record (a JSON object) rather than a value."""
    name = function.return_type.rsplit(".", 1)[-1].strip('"')
    return function.return_type == "record" or name in cache.relations


def _argument(parameter: Parameter, value: object, params: Params) -> sql.Composable:
    """A JSON value as a text parameter cast to the argument's type."""
    kind = cast_type(parameter.type)
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
