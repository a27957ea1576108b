"""The catalog document of one schema parsed into the gateway's SchemaCache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pgfortress_gateway.catalog import SCHEMA_QUERY, parse_schema
from pgfortress_gateway.schema import Column, ForeignKey, Function, Parameter

# Written by hand in the shape SCHEMA_QUERY answers (checked once on PostgreSQL 15).
SAMPLE: dict[str, Any] = {
    "schema": "shop",
    "relations": [
        {
            "name": "customers",
            "kind": "table",
            "columns": [
                {
                    "name": "id",
                    "type": "integer",
                    "nullable": False,
                    "has_default": True,
                    "category": "N",
                },
                {
                    "name": "email",
                    "type": "character varying(80)",
                    "nullable": True,
                    "has_default": False,
                },
            ],
            "primary_key": ["id"],
            "foreign_keys": [],
        },
        {
            "name": "orders",
            "kind": "table",
            "columns": [
                {
                    "name": "id",
                    "type": "bigint",
                    "nullable": False,
                    "has_default": True,
                },
                {
                    "name": "customer_id",
                    "type": "integer",
                    "nullable": True,
                    "has_default": False,
                },
            ],
            "primary_key": ["id"],
            "foreign_keys": [
                {
                    "name": "orders_customer_id_fkey",
                    "columns": ["customer_id"],
                    "target": "customers",
                    "target_columns": ["id"],
                }
            ],
        },
        {
            "name": "products",
            "kind": "view",
            "columns": [],
            "primary_key": [],
            "foreign_keys": [],
        },
    ],
    "functions": [
        {
            "name": "add",
            "parameters": [
                {"name": "a", "type": "integer", "has_default": False},
                {"name": "b", "type": "integer", "has_default": True},
            ],
            "return_type": "integer",
            "returns_set": False,
            "volatility": "immutable",
        },
        {
            "name": "add",
            "parameters": [{"name": "x", "type": "text", "has_default": False}],
            "return_type": "text",
            "returns_set": False,
            "volatility": "stable",
        },
        {
            "name": "recent",
            "parameters": [],
            "return_type": "shop.orders",
            "returns_set": True,
            "volatility": "odd",
        },
    ],
}


@pytest.mark.parametrize("as_text", [True, False])
def test_sample_parses_from_text_or_dict(as_text: bool) -> None:
    cache = parse_schema(json.dumps(SAMPLE) if as_text else SAMPLE)
    assert cache.schema == "shop"
    assert list(cache.relations) == ["customers", "orders", "products"]
    customers = cache.relations["customers"]
    assert customers.primary_key == ("id",)
    assert customers.columns["email"] == Column("email", "character varying(80)")
    assert customers.columns["id"] == Column("id", "integer", False, True, "N")
    assert cache.relations["orders"].foreign_keys == (
        ForeignKey("orders_customer_id_fkey", ("customer_id",), "customers", ("id",)),
    )
    assert cache.relations["products"].kind == "view"


def test_overloaded_function_keeps_the_first_definition() -> None:
    cache = parse_schema(SAMPLE)
    assert cache.functions["add"] == Function(
        "add",
        (Parameter("a", "integer"), Parameter("b", "integer", True)),
        "integer",
        False,
        "immutable",
    )


def test_unknown_volatility_is_taken_as_volatile() -> None:
    recent = parse_schema(SAMPLE).functions["recent"]
    assert (recent.volatility, recent.returns_set) == ("volatile", True)


def test_empty_schema() -> None:
    cache = parse_schema({"schema": "empty", "relations": [], "functions": []})
    assert (cache.relations, cache.functions) == ({}, {})


def test_query_takes_the_schema_as_its_only_parameter() -> None:
    assert SCHEMA_QUERY.count("%s") == 1
    assert SCHEMA_QUERY.count("%") == 1
    assert "n.nspname = %s" in SCHEMA_QUERY
