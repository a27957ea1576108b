"""The OpenAPI description served at ``/``, derived from the schema cache."""

from __future__ import annotations

from typing import Any

from . import __version__
from .schema import Column, Function, Relation, SchemaCache

__all__ = ["openapi_document"]

# PostgreSQL type names → the JSON schema clients see.
_JSON_TYPES = {
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "numeric": "number",
    "real": "number",
    "double precision": "number",
    "boolean": "boolean",
    "json": "object",
    "jsonb": "object",
}


def openapi_document(
    cache: SchemaCache, title: str = "pgfortress gateway"
) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name, relation in sorted(cache.relations.items()):
        schemas[name] = _relation_schema(relation)
        paths[f"/{name}"] = _relation_paths(name, relation)
    for name, function in sorted(cache.functions.items()):
        paths[f"/rpc/{name}"] = {"post": _rpc_operation(function)}
        if function.volatility != "volatile":
            paths[f"/rpc/{name}"]["get"] = _rpc_read_operation(function)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _column_schema(column: Column) -> dict[str, Any]:
    base = column.type.removesuffix("[]")
    schema: dict[str, Any] = {"type": _JSON_TYPES.get(base, "string")}
    if column.type.endswith("[]"):
        schema = {"type": "array", "items": schema}
    schema["description"] = column.type
    if column.nullable:
        schema["nullable"] = True
    return schema


def _relation_schema(relation: Relation) -> dict[str, Any]:
    required = [
        c.name
        for c in relation.columns.values()
        if not c.nullable and not c.has_default
    ]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {c.name: _column_schema(c) for c in relation.columns.values()},
    }
    if required:
        schema["required"] = required
    return schema


def _relation_paths(name: str, relation: Relation) -> dict[str, Any]:
    rows = {
        "type": "array",
        "items": {"$ref": f"#/components/schemas/{name}"},
    }
    ok = {"description": "OK", "content": {"application/json": {"schema": rows}}}
    parameters = [
        {"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
        for p in ("select", "order", "limit", "offset")
    ]
    operations: dict[str, Any] = {
        "get": {
            "summary": f"Read {name}",
            "parameters": parameters,
            "responses": {"200": ok},
        },
    }
    if relation.kind == "table":
        body = {
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
            }
        }
        done = {"description": "Done"}
        operations["post"] = {
            "summary": f"Add rows to {name}",
            "requestBody": body,
            "responses": {"201": done},
        }
        operations["patch"] = {
            "summary": f"Change rows of {name} (a filter is required)",
            "requestBody": body,
            "responses": {"200": done, "204": done},
        }
        operations["delete"] = {
            "summary": f"Remove rows of {name} (a filter is required)",
            "responses": {"200": done, "204": done},
        }
    return operations


def _rpc_operation(function: Function) -> dict[str, Any]:
    arguments = {
        "type": "object",
        "properties": {
            p.name: {"type": _JSON_TYPES.get(p.type, "string"), "description": p.type}
            for p in function.parameters
        },
        "required": [p.name for p in function.parameters if not p.has_default],
    }
    return {
        "summary": f"Call {function.name}",
        "requestBody": {"content": {"application/json": {"schema": arguments}}},
        "responses": {"200": {"description": f"returns {function.return_type}"}},
    }


def _rpc_read_operation(function: Function) -> dict[str, Any]:
    """GET, for functions that promise not to change the database."""
    parameters = [
        {
            "name": p.name,
            "in": "query",
            "required": not p.has_default,
            "schema": {"type": "string"},
            "description": p.type,
        }
        for p in function.parameters
    ]
    return {
        "summary": f"Call {function.name} ({function.volatility})",
        "parameters": parameters,
        "responses": {"200": {"description": f"returns {function.return_type}"}},
    }
