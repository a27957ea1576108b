"""Load the exposed schema from PostgreSQL's catalog into a :class:`SchemaCache`.

:data:`SCHEMA_QUERY` takes the schema name as its only bound parameter and
answers one row with one JSON document (or no row when the schema does not
exist); :func:`parse_schema` turns that document into the typed cache.

Only objects of that one schema are read: foreign keys pointing into another
schema are left out, and so are functions the gateway cannot call by named
arguments (procedures, aggregates, functions with OUT, INOUT or VARIADIC
arguments or with unnamed arguments). When a function name is overloaded, only
the oldest definition (lowest oid) is kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, cast

from pgfortress_gateway.schema import (
    Column,
    ForeignKey,
    Function,
    Parameter,
    Relation,
    SchemaCache,
)

__all__ = ["SCHEMA_QUERY", "parse_schema"]

SCHEMA_QUERY = """
SELECT json_build_object(
  'schema', n.nspname,
  'relations', coalesce((
    SELECT json_agg(json_build_object(
      'name', c.relname,
      'kind', CASE WHEN c.relkind IN ('r', 'p', 'f') THEN 'table' ELSE 'view' END,
      'columns', (
        SELECT coalesce(json_agg(json_build_object(
          'name', a.attname,
          'type', format_type(a.atttypid, a.atttypmod),
          'nullable', NOT a.attnotnull,
          'has_default', a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '',
          'category', t.typcategory
        ) ORDER BY a.attnum), '[]')
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      ),
      'primary_key', (
        SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
        FROM pg_constraint pk
        CROSS JOIN LATERAL unnest(pk.conkey) WITH ORDINALITY AS k(num, ord)
        JOIN pg_attribute a ON a.attrelid = pk.conrelid AND a.attnum = k.num
        WHERE pk.conrelid = c.oid AND pk.contype = 'p'
      ),
      'foreign_keys', (
        SELECT coalesce(json_agg(json_build_object(
          'name', fk.conname,
          'columns', (
            SELECT json_agg(a.attname ORDER BY k.ord)
            FROM unnest(fk.conkey) WITH ORDINALITY AS k(num, ord)
            JOIN pg_attribute a ON a.attrelid = fk.conrelid AND a.attnum = k.num
          ),
          'target', t.relname,
          'target_columns', (
            SELECT json_agg(a.attname ORDER BY k.ord)
            FROM unnest(fk.confkey) WITH ORDINALITY AS k(num, ord)
            JOIN pg_attribute a ON a.attrelid = fk.confrelid AND a.attnum = k.num
          )
        ) ORDER BY fk.conname), '[]')
        FROM pg_constraint fk
        JOIN pg_class t ON t.oid = fk.confrelid
        WHERE fk.conrelid = c.oid AND fk.contype = 'f'
          AND t.relnamespace = c.relnamespace
      )
    ) ORDER BY c.relname)
    FROM pg_class c
    WHERE c.relnamespace = n.oid
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND NOT c.relispartition
  ), '[]'),
  'functions', coalesce((
    SELECT json_agg(json_build_object(
      'name', p.proname,
      'parameters', (
        SELECT coalesce(json_agg(json_build_object(
          'name', p.proargnames[k.ord],
          'type', format_type(k.oid, NULL),
          'has_default', k.ord > p.pronargs - p.pronargdefaults
        ) ORDER BY k.ord), '[]')
        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS k(oid, ord)
      ),
      'return_type', format_type(p.prorettype, NULL),
      'returns_set', p.proretset,
      'volatility', CASE p.provolatile
        WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END
    ) ORDER BY p.oid)
    FROM pg_proc p
    WHERE p.pronamespace = n.oid
      AND p.prokind = 'f'
      AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype,
                               'internal'::regtype)
      AND (p.proargmodes IS NULL OR p.proargmodes <@ ARRAY['i', 't']::"char"[])
      AND (p.pronargs = 0 OR (
        p.proargnames IS NOT NULL
        AND NOT ('' = ANY (p.proargnames[1:p.pronargs]))
        AND array_length(p.proargnames, 1) >= p.pronargs
      ))
  ), '[]')
)
FROM pg_namespace n
WHERE n.nspname = %s
"""


def parse_schema(document: str | Mapping[str, Any]) -> SchemaCache:
    """Build the cache from the JSON answer of :data:`SCHEMA_QUERY`."""
    data = json.loads(document) if isinstance(document, str) else document
    relations = {r["name"]: _relation(r) for r in data.get("relations") or ()}
    functions: dict[str, Function] = {}
    for item in data.get("functions") or ():
        functions.setdefault(item["name"], _function(item))
    return SchemaCache(str(data["schema"]), relations, functions)


def _relation(item: Mapping[str, Any]) -> Relation:
    columns = {
        c["name"]: Column(
            name=c["name"],
            type=c["type"],
            nullable=bool(c.get("nullable", True)),
            has_default=bool(c.get("has_default", False)),
            category=str(c.get("category") or ""),
        )
        for c in item.get("columns") or ()
    }
    keys = tuple(
        ForeignKey(
            name=fk["name"],
            columns=tuple(fk["columns"]),
            target=fk["target"],
            target_columns=tuple(fk["target_columns"]),
        )
        for fk in item.get("foreign_keys") or ()
    )
    kind: Literal["table", "view"] = "table" if item["kind"] == "table" else "view"
    return Relation(
        name=item["name"],
        kind=kind,
        columns=columns,
        primary_key=tuple(item.get("primary_key") or ()),
        foreign_keys=keys,
    )


def _function(item: Mapping[str, Any]) -> Function:
    volatility = item.get("volatility", "volatile")
    if volatility not in ("immutable", "stable", "volatile"):
        volatility = "volatile"
    return Function(
        name=item["name"],
        parameters=tuple(
            Parameter(p["name"], p["type"], bool(p.get("has_default", False)))
            for p in item.get("parameters") or ()
        ),
        return_type=item["return_type"],
        returns_set=bool(item.get("returns_set", False)),
        volatility=cast(Literal["immutable", "stable", "volatile"], volatility),
    )
