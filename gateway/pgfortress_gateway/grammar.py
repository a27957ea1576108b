"""PostgREST's URL grammar, parsed into typed requests checked against the catalog.

Every relation, column, function and argument name is looked up in the
:class:`SchemaCache` here; whatever is not in it is refused with a
:class:`RequestError` (or :class:`NotFoundError` for the relation or function of the
path), so the SQL builders never see a name the catalog does not know.

Unlike PostgREST, an update or a delete without any filter is refused: a
forgotten ``?id=eq.1`` must not rewrite a whole table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pgfortress_gateway._headers import (
    apply_range,
    check_profile,
    content_range,
    parse_prefer,
    wants_object,
)
from pgfortress_gateway._lex import nonnegative, show, split_top, unquote
from pgfortress_gateway._nodes import (
    Condition,
    DeleteRequest,
    Embed,
    Field,
    Filter,
    InsertRequest,
    Logic,
    Order,
    Preferences,
    ReadRequest,
    RpcRequest,
    SelectItem,
    UpdateRequest,
)
from pgfortress_gateway._scope import Path, Scope, group_by_path, parse_scope
from pgfortress_gateway._select import parse_select
from pgfortress_gateway.errors import NotFoundError, PayloadError, RequestError
from pgfortress_gateway.schema import Function, Relation, SchemaCache

__all__ = [
    "Condition",
    "DeleteRequest",
    "Embed",
    "Field",
    "Filter",
    "InsertRequest",
    "Logic",
    "Order",
    "Preferences",
    "ReadRequest",
    "RpcRequest",
    "SelectItem",
    "UpdateRequest",
    "content_range",
    "parse_delete",
    "parse_insert",
    "parse_prefer",
    "parse_read",
    "parse_rpc",
    "parse_update",
    "single_object",
]

_NEEDS_FILTER = "add a filter such as ?id=eq.1"
# missing=default inserts each set of columns the rows name with its own
# INSERT; a body naming many different sets would make one huge statement.
_MAX_KEY_SETS = 100


def parse_read(
    relation: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    cache: SchemaCache,
) -> ReadRequest:
    """A GET on ``/<relation>``: filters, select, order, limit/offset and Range."""
    target = _relation(relation, cache)
    headers = _lower(headers)
    check_profile(headers, cache.schema, writing=False)
    singular = wants_object(headers)
    select, rest = _take_select(target, params, cache)
    scope = parse_scope(target, rest)
    offset, limit = apply_range(headers, scope.offset, scope.limit)
    return ReadRequest(
        relation=target.name,
        select=select,
        filters=scope.filters,
        order=scope.order,
        limit=limit,
        offset=offset,
        prefer=parse_prefer(headers.get("prefer", "")),
        singular=singular,
    )


def single_object(body: str) -> str:
    """The one row of a JSON array answer, for a client that asked for an object
    (``singular`` on a request); 406 when there is not exactly one. A write's
    statement has already checked its count and undone itself otherwise."""
    rows = json.loads(body)
    if not isinstance(rows, list) or len(rows) != 1:
        count = len(rows) if isinstance(rows, list) else 0
        raise RequestError(
            f"a single JSON object was asked for, but {count} rows matched",
            status=406,
        )
    return json.dumps(rows[0])


def parse_insert(
    relation: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: object,
    cache: SchemaCache,
) -> InsertRequest:
    """A POST on ``/<relation>`` with one JSON object or an array of them."""
    target = _relation(relation, cache)
    headers = _write_headers(headers, cache)
    select, rest = _take_select(target, params, cache)
    prefer = parse_prefer(headers.get("prefer", ""))
    named: tuple[str, ...] | None = None
    conflict: tuple[str, ...] | None = None
    for key, value in rest:
        if key == "columns" and named is None:
            named = _column_list(target, value)
        elif key == "on_conflict" and conflict is None:
            conflict = _column_list(target, value)
        else:
            raise RequestError(f"unexpected parameter {show(key)} for an insert")
    rows = _rows(body)
    if named is None:
        seen = dict.fromkeys(key for row in rows for key in row)
        named = tuple(_column(target, key) for key in seen)
    if not named and not prefer.missing_default:
        raise PayloadError("the body names no column to insert")
    kept = tuple({c: row[c] for c in named if c in row} for row in rows)
    request = InsertRequest(
        target.name,
        named,
        kept,
        select,
        prefer,
        _conflict_target(target, prefer, conflict),
        wants_object(headers),
    )
    if len(request.batches()) > _MAX_KEY_SETS:
        raise PayloadError(
            f"with Prefer: missing=default the rows may name at most "
            f"{_MAX_KEY_SETS} different sets of columns"
        )
    return request


def _column_list(relation: Relation, text: str) -> tuple[str, ...]:
    return tuple(_column(relation, unquote(c)) for c in split_top(text))


def _conflict_target(
    relation: Relation, prefer: Preferences, named: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The columns an upsert's ON CONFLICT names: ``on_conflict`` or the key."""
    if prefer.resolution is None:
        if named is not None:
            raise RequestError(
                "on_conflict needs Prefer: resolution=merge-duplicates "
                "or resolution=ignore-duplicates"
            )
        return ()
    if named is None and not relation.primary_key:
        raise RequestError(
            f"{show(relation.name)} has no primary key: name the unique "
            "columns of the upsert with on_conflict=col1,col2"
        )
    return named or relation.primary_key


def parse_update(
    relation: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: object,
    cache: SchemaCache,
) -> UpdateRequest:
    """A PATCH on ``/<relation>``: a JSON object of new values, and filters."""
    target = _relation(relation, cache)
    headers = _write_headers(headers, cache)
    if not isinstance(body, dict) or not body:
        raise PayloadError("an update needs a JSON object with at least one column")
    values = {_column(target, str(key)): value for key, value in body.items()}
    select, filters = _write_filters(target, params, cache)
    prefer = parse_prefer(headers.get("prefer", ""))
    singular = wants_object(headers)
    return UpdateRequest(target.name, values, filters, select, prefer, singular)


def parse_delete(
    relation: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    cache: SchemaCache,
) -> DeleteRequest:
    """A DELETE on ``/<relation>``; at least one filter is required."""
    target = _relation(relation, cache)
    headers = _write_headers(headers, cache)
    select, filters = _write_filters(target, params, cache)
    prefer = parse_prefer(headers.get("prefer", ""))
    return DeleteRequest(target.name, filters, select, prefer, wants_object(headers))


def parse_rpc(
    function: str,
    params: Sequence[tuple[str, str]],
    body: object,
    cache: SchemaCache,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
) -> RpcRequest:
    """``/rpc/<function>``: a POST takes its arguments from a JSON object, a GET
    or HEAD from the query string, and only for a STABLE or IMMUTABLE function.

    When the function returns rows of a relation of the schema, the other
    parameters shape its result as on that relation: ``select`` (embedding
    too), filters, ``order``; ``limit``/``offset`` page any set. ``headers``,
    when given, must name the exposed schema if they name one."""
    reading = method in ("GET", "HEAD")
    lowered = _lower(headers or {})
    if headers is not None:
        check_profile(lowered, cache.schema, writing=not reading)
    found = cache.functions.get(function)
    if found is None:
        raise NotFoundError(f"no function {show(function)} in the exposed schema")
    if reading and found.volatility == "volatile":
        raise RequestError(
            f"function {show(function)} is volatile: call it with POST", status=405
        )
    if reading:
        given, rest = _query_arguments(found, params)
    elif body is None or isinstance(body, dict):
        given = {str(key): value for key, value in (body or {}).items()}
        rest = list(params)
    else:
        raise PayloadError("rpc arguments must be a JSON object")
    known = found.parameters_by_name
    for name in given:
        if name not in known:
            raise RequestError(
                f"function {show(function)} has no argument {show(name)}"
            )
    missing = [
        p.name for p in found.parameters if not p.has_default and p.name not in given
    ]
    if missing:
        raise RequestError(
            f"missing argument(s) for {show(function)}: {', '.join(missing)}"
        )
    arguments = tuple(
        (p.name, given[p.name]) for p in found.parameters if p.name in given
    )
    select, scope = _rpc_result(found, rest, cache)
    return RpcRequest(
        found.name,
        arguments,
        scope.limit,
        scope.offset,
        select=select,
        filters=scope.filters,
        order=scope.order,
        textual=reading,
        singular=found.returns_set and wants_object(lowered),
    )


def _query_arguments(
    function: Function, params: Sequence[tuple[str, str]]
) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """Split a GET's parameters into arguments (by name) and the rest.

    An argument given more than once is an array (``?tags=a&tags=b``), as in
    PostgREST, when the parameter's type is one; otherwise it is refused."""
    known = function.parameters_by_name
    given: dict[str, object] = {}
    rest: list[tuple[str, str]] = []
    for key, value in params:
        if key not in known:
            rest.append((key, value))
        elif key not in given:
            given[key] = value
        elif known[key].type.endswith("[]"):
            previous = given[key]
            items = previous if isinstance(previous, list) else [previous]
            given[key] = [*items, value]
        else:
            raise RequestError(f"argument {show(key)} is given more than once")
    return given, rest


def _rpc_result(
    function: Function, params: Sequence[tuple[str, str]], cache: SchemaCache
) -> tuple[tuple[SelectItem, ...], Scope]:
    """``select``, and the filters, order and paging of a call's result."""
    returned = cache.returned_relation(function)
    if returned is None:
        paging: dict[str, str] = {}
        for key, value in params:
            if key in paging:
                raise RequestError(f"{key} is given more than once")
            if key not in ("limit", "offset"):
                raise RequestError(
                    f"unexpected parameter {show(key)} for rpc: "
                    f"{show(function.name)} has no such argument and returns "
                    "no rows of a relation to filter"
                )
            paging[key] = value
        limit = nonnegative("limit", paging["limit"]) if "limit" in paging else None
        offset = nonnegative("offset", paging.get("offset", "0"))
        return (), Scope(limit=limit, offset=offset)
    for key, _ in params:
        if key in ("columns", "on_conflict"):
            raise RequestError(f"unexpected parameter {show(key)} for rpc")
    select, rest = _take_select(returned, params, cache)
    return select, parse_scope(returned, rest)


def _relation(name: str, cache: SchemaCache) -> Relation:
    found = cache.relations.get(name)
    if found is None:
        raise NotFoundError(f"no relation {show(name)} in the exposed schema")
    return found


def _column(relation: Relation, name: str) -> str:
    if name not in relation.columns:
        raise RequestError(
            f"column {show(name)} does not exist in {show(relation.name)}"
        )
    return name


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _write_headers(headers: Mapping[str, str], cache: SchemaCache) -> dict[str, str]:
    """Lower-cased headers of a write, its profile checked."""
    lowered = _lower(headers)
    check_profile(lowered, cache.schema, writing=True)
    return lowered


def _take_select(
    relation: Relation, params: Sequence[tuple[str, str]], cache: SchemaCache
) -> tuple[tuple[SelectItem, ...], list[tuple[str, str]]]:
    """Parse ``select`` (``*`` by default); return the other top-level params."""
    texts = [value for key, value in params if key == "select"]
    if len(texts) > 1:
        raise RequestError("select is given more than once")
    groups = group_by_path([(k, v) for k, v in params if k != "select"])
    select = parse_select(texts[0] if texts else "*", relation, cache, groups)
    unknown = set(groups) - {()} - set(_embed_paths(select, ()))
    if unknown:
        path = ".".join(sorted(unknown)[0])
        raise RequestError(f"{show(path)} is not an embedded resource in select")
    return select, groups.get((), [])


def _embed_paths(items: Sequence[SelectItem], path: Path) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        if isinstance(item, Embed):
            paths.append((*path, item.key))
            paths += _embed_paths(item.select, (*path, item.key))
    return paths


def _write_filters(
    relation: Relation, params: Sequence[tuple[str, str]], cache: SchemaCache
) -> tuple[tuple[SelectItem, ...], tuple[Condition, ...]]:
    select, rest = _take_select(relation, params, cache)
    for key, _ in rest:
        if key in ("order", "limit", "offset", "columns", "on_conflict"):
            raise RequestError(f"{key} is not supported on updates and deletes")
    filters = parse_scope(relation, rest).filters
    if not filters:
        raise RequestError(f"refusing to change every row: {_NEEDS_FILTER}")
    return select, filters


def _rows(body: object) -> tuple[Mapping[str, object], ...]:
    if isinstance(body, dict):
        return ({str(k): v for k, v in body.items()},)
    if isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
        return tuple({str(k): v for k, v in row.items()} for row in body)
    raise PayloadError("the body must be a JSON object or a non-empty array of objects")
