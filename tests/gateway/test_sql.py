"""Parsed requests → SQL text and bound parameters (no database needed).

The expected statements were run once against PostgreSQL 15 with the schema of
``make_cache``; here they pin the exact text so that a change is deliberate.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from pgfortress_gateway.errors import PayloadError, RequestError
from pgfortress_gateway.grammar import (
    parse_delete,
    parse_insert,
    parse_read,
    parse_rpc,
    parse_update,
)
from pgfortress_gateway.schema import Column, Relation, SchemaCache
from pgfortress_gateway.sql import (
    Query,
    build_delete,
    build_insert,
    build_read,
    build_rpc,
    build_update,
    refusal,
)

from tests.gateway.test_grammar import _q, make_cache

CACHE = make_cache()
PAGE = (
    "SELECT pgf_agg.body AS body, pgf_total.total AS total, pgf_agg.returned AS "
    "returned FROM (SELECT coalesce(json_agg(pgf_page.*), '[]')::text AS body, "
    "count(*) AS returned FROM ({1}) AS pgf_page) AS pgf_agg, LATERAL (SELECT {0} "
    "AS total) AS pgf_total"
)
NO_COUNT = " AS body, NULL::bigint AS total"


def _read(
    query: str, headers: dict[str, str] | None = None, max_rows: int = 100
) -> Query:
    relation, _, rest = query.partition("?")
    params = _q(rest) if rest else []
    return build_read(
        parse_read(relation, params, headers or {}, CACHE), CACHE, max_rows
    )


def _page(inner: str, total: str = NO_COUNT) -> str:
    counted = total.removeprefix(" AS body, ").removesuffix(" AS total")
    return PAGE.format(counted, inner)


READS: list[tuple[str, dict[str, str], str, tuple[object, ...]]] = [
    (
        "customers",
        {},
        _page('SELECT "pgf_0".* FROM "shop"."customers" AS "pgf_0" LIMIT %s'),
        (100,),
    ),
    (
        "customers?id=eq.1&name=neq.x&limit=500",
        {},
        _page(
            'SELECT "pgf_0".* FROM "shop"."customers" AS "pgf_0" WHERE '
            '"pgf_0"."id" = %s::integer AND "pgf_0"."name" <> %s::text LIMIT %s'
        ),
        ("1", "x", 100),
    ),
    (
        "customers?select=id,label:name&email=like.*@x&created_at=gte.2024-01-01",
        {"Range": "10-19"},
        _page(
            'SELECT "pgf_0"."id" AS "id", "pgf_0"."name" AS "label" FROM '
            '"shop"."customers" AS "pgf_0" WHERE "pgf_0"."email" LIKE %s AND '
            '"pgf_0"."created_at" >= %s::timestamp with time zone LIMIT %s OFFSET %s'
        ),
        ("%@x", "2024-01-01", 10, 10),
    ),
    (
        'orders?total=lt.5&customer_id=ilike.1*&status=not.in.(a,"b,c")&tags=is.null',
        {},
        _page(
            'SELECT "pgf_0".* FROM "shop"."orders" AS "pgf_0" WHERE '
            '"pgf_0"."total" < %s::numeric AND "pgf_0"."customer_id"::text ILIKE %s '
            'AND NOT ("pgf_0"."status" = ANY(%s::text[])) AND "pgf_0"."tags" IS NULL '
            "LIMIT %s"
        ),
        ("5", "1%", ["a", "b,c"], 100),
    ),
    (
        "customers?or=(id.eq.1,and(vip.is.true,name.gt.m))&order=name.desc.nullslast,id",
        {},
        _page(
            'SELECT "pgf_0".* FROM "shop"."customers" AS "pgf_0" WHERE '
            '("pgf_0"."id" = %s::integer OR ("pgf_0"."vip" IS TRUE AND '
            '"pgf_0"."name" > %s::text)) ORDER BY "pgf_0"."name" DESC NULLS LAST, '
            '"pgf_0"."id" ASC LIMIT %s'
        ),
        ("1", "m", 100),
    ),
    (
        "customers?select=id,orders(id,total)&id=in.(1,2)&limit=5",
        {"Prefer": "count=exact"},
        _page(
            'SELECT "pgf_0"."id" AS "id", (SELECT coalesce(json_agg("pgf_row_1".*), '
            '\'[]\') FROM (SELECT "pgf_1"."id" AS "id", "pgf_1"."total" AS '
            '"total" FROM "shop"."orders" AS "pgf_1" WHERE "pgf_1"."customer_id" = '
            '"pgf_0"."id" LIMIT %s) AS "pgf_row_1") AS "orders" FROM '
            '"shop"."customers" AS "pgf_0" WHERE "pgf_0"."id" = ANY(%s::integer[]) '
            "LIMIT %s",
            ' AS body, (SELECT count(*) FROM "shop"."customers" AS "pgf_0" WHERE '
            '"pgf_0"."id" = ANY(%s::integer[])) AS total',
        ),
        (1000, ["1", "2"], 5, ["1", "2"]),
    ),
    (
        "orders?select=*,buyer:customers(name)",
        {},
        _page(
            'SELECT "pgf_0".*, (SELECT row_to_json("pgf_row_1".*) FROM (SELECT '
            '"pgf_1"."name" AS "name" FROM "shop"."customers" AS "pgf_1" WHERE '
            '"pgf_1"."id" = "pgf_0"."customer_id") AS "pgf_row_1") AS "buyer" FROM '
            '"shop"."orders" AS "pgf_0" LIMIT %s'
        ),
        (100,),
    ),
    (
        "customers?select=id,orders!inner(id)&orders.status=eq.new&offset=3",
        {},
        _page(
            'SELECT "pgf_0"."id" AS "id", (SELECT coalesce(json_agg("pgf_row_1".*), '
            '\'[]\') FROM (SELECT "pgf_1"."id" AS "id" FROM "shop"."orders" '
            'AS "pgf_1" WHERE "pgf_1"."customer_id" = "pgf_0"."id" AND '
            '"pgf_1"."status" = %s::text LIMIT %s) AS "pgf_row_1") AS "orders" FROM '
            '"shop"."customers" AS "pgf_0" WHERE EXISTS (SELECT 1 FROM "shop"."orders" '
            'AS "pgf_inner_0_0" WHERE "pgf_inner_0_0"."customer_id" = "pgf_0"."id" AND '
            '"pgf_inner_0_0"."status" = %s::text) LIMIT %s OFFSET %s'
        ),
        ("new", 1000, "new", 100, 3),
    ),
    (
        "customers?select=o:orders(id)&o.order=id.desc&o.limit=2&o.offset=1",
        {},
        _page(
            "SELECT (SELECT coalesce(json_agg(\"pgf_row_1\".*), '[]') FROM (SELECT "
            '"pgf_1"."id" AS "id" FROM "shop"."orders" AS "pgf_1" WHERE '
            '"pgf_1"."customer_id" = "pgf_0"."id" ORDER BY "pgf_1"."id" DESC LIMIT %s '
            'OFFSET %s) AS "pgf_row_1") AS "o" FROM "shop"."customers" AS "pgf_0" '
            "LIMIT %s"
        ),
        (2, 1, 100),
    ),
]


@pytest.mark.parametrize(
    ("url", "headers", "expected", "params"), READS, ids=[r[0][:50] for r in READS]
)
def test_reads(
    url: str, headers: dict[str, str], expected: str, params: tuple[object, ...]
) -> None:
    query = _read(url, headers)
    assert query.sql.as_string(None) == expected
    assert query.params == params
    assert query.sql.as_string(None).count("%s") == len(query.params)
    _assert_values_fit_their_placeholders(query)


def _assert_values_fit_their_placeholders(query: Query) -> None:
    """Each value lands where its kind belongs: numbers after LIMIT/OFFSET,
    text and lists before a cast or after LIKE. Placeholders are filled in
    text order, so a value added out of that order shows up here."""
    pieces = query.sql.as_string(None).split("%s")
    for before, value, after in zip(pieces, query.params, pieces[1:], strict=False):
        if isinstance(value, int):
            assert before.endswith(("LIMIT ", "OFFSET ")), (before[-40:], value)
        else:
            patterns = before.rstrip().endswith(("LIKE", "~", "~*"))
            assert after.startswith("::") or patterns, (value, after[:40])


@pytest.mark.parametrize(
    "url",
    [
        "orders?customer_id=eq.1",
        "orders?customer_id=eq.1&limit=2&offset=1",
        "customers?select=id,orders(id)&id=in.(1,2)&orders.total=gt.5",
    ],
)
def test_counted_reads_bind_values_in_text_order(url: str) -> None:
    _assert_values_fit_their_placeholders(_read(url, {"Prefer": "count=exact"}))


def _events(where: str) -> str:
    """The page of ``events?select=id&<filter>`` around one WHERE condition."""
    head = 'SELECT "pgf_0"."id" AS "id" FROM "shop"."events" AS "pgf_0" WHERE '
    return _page(head + where + " LIMIT %s")


# Each was run on PostgreSQL 15 against rows built to match and to miss.
OPERATORS: list[tuple[str, str, tuple[object, ...]]] = [
    ("tags=cs.{a,b}", '"pgf_0"."tags" @> %s::text[]', ("{a,b}",)),
    (
        'tags=not.cd.{"a,b",c}',
        'NOT ("pgf_0"."tags" <@ %s::text[])',
        ('{"a,b",c}',),
    ),
    (
        "during=ov.[2024-01-15,2024-03-02)",
        '"pgf_0"."during" && %s::tstzrange',
        ("[2024-01-15,2024-03-02)",),
    ),
    ("seats=sl.(5,9]", '"pgf_0"."seats" << %s::int4range', ("(5,9]",)),
    ("seats=sr.[1,5)", '"pgf_0"."seats" >> %s::int4range', ("[1,5)",)),
    ("seats=nxl.[1,5)", '"pgf_0"."seats" &> %s::int4range', ("[1,5)",)),
    ("seats=nxr.[1,9)", '"pgf_0"."seats" &< %s::int4range', ("[1,9)",)),
    ("seats=adj.[5,10)", '"pgf_0"."seats" -|- %s::int4range', ("[5,10)",)),
    ('doc=cs.{"k":1}', '"pgf_0"."doc" @> %s::jsonb', ('{"k":1}',)),
    ("id=isdistinct.1", '"pgf_0"."id" IS DISTINCT FROM %s::integer', ("1",)),
    ("id=not.isdistinct.1", 'NOT ("pgf_0"."id" IS DISTINCT FROM %s::integer)', ("1",)),
    ("body=match.^The.*t$", '"pgf_0"."body" ~ %s', ("^The.*t$",)),
    ("body=imatch.DOGS", '"pgf_0"."body" ~* %s', ("DOGS",)),
    ("id=match.^1", '"pgf_0"."id"::text ~ %s', ("^1",)),
    ("search=fts.cat", '"pgf_0"."search" @@ to_tsquery(%s)', ("cat",)),
    (
        "search=phfts(english).fat cats",
        '"pgf_0"."search" @@ phraseto_tsquery(%s::regconfig, %s)',
        ("english", "fat cats"),
    ),
    (
        "body=fts(english).cats",
        'to_tsvector(%s::regconfig, "pgf_0"."body") @@ to_tsquery(%s::regconfig, %s)',
        ("english", "english", "cats"),
    ),
    (
        "body=not.wfts(simple).dogs or fat",
        'NOT (to_tsvector(%s::regconfig, "pgf_0"."body") @@ '
        "websearch_to_tsquery(%s::regconfig, %s))",
        ("simple", "simple", "dogs or fat"),
    ),
    ("doc=plfts.1", 'to_tsvector("pgf_0"."doc") @@ plainto_tsquery(%s)', ("1",)),
    (
        'or=(tags.cs.{a,"b"},seats.ov."[11,12)",body.plfts(english).fat cats)',
        '("pgf_0"."tags" @> %s::text[] OR "pgf_0"."seats" && %s::int4range OR '
        'to_tsvector(%s::regconfig, "pgf_0"."body") @@ '
        "plainto_tsquery(%s::regconfig, %s))",
        ('{a,"b"}', "[11,12)", "english", "english", "fat cats"),
    ),
    (
        'not.and=(seats.adj."[5,10)",search.not.fts.x)',
        'NOT (("pgf_0"."seats" -|- %s::int4range AND '
        'NOT ("pgf_0"."search" @@ to_tsquery(%s))))',
        ("[5,10)", "x"),
    ),
]


@pytest.mark.parametrize(
    ("filters", "where", "params"), OPERATORS, ids=[o[0] for o in OPERATORS]
)
def test_array_range_and_text_search_operators(
    filters: str, where: str, params: tuple[object, ...]
) -> None:
    query = _read(f"events?select=id&{filters}")
    assert query.sql.as_string(None) == _events(where)
    assert query.params == (*params, 100)


def test_an_unknown_text_search_configuration_is_a_400_without_server_text() -> None:
    error = psycopg.errors.UndefinedObject('text search configuration "x"')
    refused = refusal(error)
    assert refused is not None
    assert (refused.status, '"x"' in refused.message) == (400, False)
    wrapped = RequestError("mapped")
    wrapped.__cause__ = error
    assert refusal(wrapped) is not None
    assert refusal(psycopg.errors.DivisionByZero("x")) is None
    assert refusal(RequestError("plain")) is None


def _returned(write: str, rows: str) -> str:
    """A write in a CTE, then its rows as JSON and their count."""
    answer = (
        " SELECT (SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM ({}) AS "
        'pgf_page) AS body, (SELECT count(*) FROM "pgf_0") AS total'
    )
    return write + answer.format(rows)


def _writes() -> list[tuple[Callable[[], Query], str, tuple[object, ...]]]:
    rep = {"Prefer": "return=representation"}
    return [
        (
            lambda: build_insert(
                parse_insert(
                    "customers", [], rep, [{"name": "a"}, {"vip": True}], CACHE
                ),
                CACHE,
            ),
            _returned(
                'WITH "pgf_0" AS (INSERT INTO "shop"."customers" AS "pgf_target" '
                '("name", "vip") SELECT "pgf_body"."name", "pgf_body"."vip" FROM '
                'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
                '"pgf_body" RETURNING "pgf_target".*)',
                'SELECT "pgf_0".* FROM "pgf_0"',
            ),
            ('[{"name": "a"}, {"vip": true}]',),
        ),
        (
            lambda: build_insert(
                parse_insert("customers", [], {}, {"name": "é"}, CACHE), CACHE
            ),
            'WITH "pgf_0" AS (INSERT INTO "shop"."customers" AS "pgf_target" '
            '("name") SELECT "pgf_body"."name" FROM json_populate_recordset('
            'NULL::"shop"."customers", %s::json) AS "pgf_body") SELECT NULL::text '
            "AS body, NULL::bigint AS total",
            ('[{"name": "é"}]',),
        ),
        (
            lambda: build_update(
                parse_update(
                    "customers",
                    [("id", "eq.1")],
                    {"Prefer": "return=headers-only"},
                    {"vip": False},
                    CACHE,
                ),
                CACHE,
            ),
            _returned(
                'WITH "pgf_0" AS (UPDATE "shop"."customers" AS "pgf_target" SET '
                '"vip" = "pgf_body"."vip" FROM json_populate_record('
                'NULL::"shop"."customers", %s::json) AS "pgf_body" WHERE '
                '"pgf_target"."id" = %s::integer RETURNING "pgf_target"."id")',
                'SELECT "pgf_0"."id" AS "id" FROM "pgf_0"',
            ),
            ('{"vip": false}', "1"),
        ),
        (
            lambda: build_delete(
                parse_delete(
                    "orders",
                    [("id", "eq.1"), ("select", "id,customers(name)")],
                    rep,
                    CACHE,
                ),
                CACHE,
            ),
            _returned(
                'WITH "pgf_0" AS (DELETE FROM "shop"."orders" AS "pgf_target" WHERE '
                '"pgf_target"."id" = %s::bigint RETURNING "pgf_target".*)',
                'SELECT "pgf_0"."id" AS "id", (SELECT row_to_json("pgf_row_1".*) FROM '
                '(SELECT "pgf_1"."name" AS "name" FROM "shop"."customers" AS "pgf_1" '
                'WHERE "pgf_1"."id" = "pgf_0"."customer_id") AS "pgf_row_1") AS '
                '"customers" FROM "pgf_0"',
            ),
            ("1",),
        ),
    ]


def _insert(body: object, prefer: str, query: str = "") -> Query:
    params = _q(query) if query else []
    request = parse_insert("customers", params, {"Prefer": prefer}, body, CACHE)
    return build_insert(request, CACHE)


# Each was run on PostgreSQL 15 (an explicit null stays NULL, a missing key
# takes the DEFAULT, merge replaces and ignore keeps the existing row).
UPSERTS: list[tuple[Callable[[], Query], str, tuple[object, ...]]] = [
    (
        lambda: _insert(
            [{"id": 1, "name": "a"}],
            "return=representation,resolution=merge-duplicates",
        ),
        'WITH "pgf_0" AS (INSERT INTO "shop"."customers" AS "pgf_target" '
        '("id", "name") SELECT "pgf_body"."id", "pgf_body"."name" FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" ON CONFLICT ("id") DO UPDATE SET "id" = EXCLUDED."id", '
        '"name" = EXCLUDED."name" RETURNING "pgf_target".*) SELECT (SELECT '
        "coalesce(json_agg(pgf_page.*), '[]')::text FROM (SELECT \"pgf_0\".* "
        'FROM "pgf_0") AS pgf_page) AS body, (SELECT count(*) FROM "pgf_0") '
        "AS total",
        ('[{"id": 1, "name": "a"}]',),
    ),
    (
        lambda: _insert(
            {"email": "a@x", "vip": True},
            "resolution=ignore-duplicates",
            "on_conflict=email",
        ),
        'WITH "pgf_0" AS (INSERT INTO "shop"."customers" AS "pgf_target" '
        '("email", "vip") SELECT "pgf_body"."email", "pgf_body"."vip" FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" ON CONFLICT ("email") DO NOTHING) SELECT NULL::text AS '
        "body, NULL::bigint AS total",
        ('[{"email": "a@x", "vip": true}]',),
    ),
    (
        lambda: _insert(
            [{"name": None}, {"vip": True}, {"name": "b"}],
            "return=headers-only,missing=default",
        ),
        'WITH "pgf_write_1" AS (INSERT INTO "shop"."customers" AS '
        '"pgf_target" ("name") SELECT "pgf_body"."name" FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" RETURNING "pgf_target"."id"), "pgf_write_2" AS (INSERT '
        'INTO "shop"."customers" AS "pgf_target" ("vip") SELECT '
        '"pgf_body"."vip" FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" RETURNING "pgf_target"."id"), "pgf_0" AS (SELECT * FROM '
        '"pgf_write_1" UNION ALL SELECT * FROM "pgf_write_2") SELECT (SELECT '
        'coalesce(json_agg(pgf_page.*), \'[]\')::text FROM (SELECT "pgf_0"."id" '
        'AS "id" FROM "pgf_0") AS pgf_page) AS body, (SELECT count(*) FROM '
        '"pgf_0") AS total',
        ('[{"name": null}, {"name": "b"}]', '[{"vip": true}]'),
    ),
    (
        lambda: _insert(
            [{"id": 1, "vip": False}, {}], "missing=default,resolution=merge-duplicates"
        ),
        'WITH "pgf_write_1" AS (INSERT INTO "shop"."customers" AS '
        '"pgf_target" ("id", "vip") SELECT "pgf_body"."id", "pgf_body"."vip" '
        'FROM json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" ON CONFLICT ("id") DO UPDATE SET "id" = EXCLUDED."id", '
        '"vip" = EXCLUDED."vip"), "pgf_write_2" AS (INSERT INTO '
        '"shop"."customers" AS "pgf_target" SELECT  FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" ON CONFLICT ("id") DO UPDATE SET "id" = EXCLUDED."id", '
        '"vip" = EXCLUDED."vip") SELECT NULL::text AS body, NULL::bigint AS '
        "total",
        ('[{"id": 1, "vip": false}]', "[{}]"),
    ),
    (
        lambda: _insert({}, "missing=default,resolution=merge-duplicates"),
        'WITH "pgf_0" AS (INSERT INTO "shop"."customers" AS "pgf_target" '
        'SELECT  FROM json_populate_recordset(NULL::"shop"."customers", '
        '%s::json) AS "pgf_body" ON CONFLICT ("id") DO NOTHING) SELECT '
        "NULL::text AS body, NULL::bigint AS total",
        ("[{}]",),
    ),
]


@pytest.mark.parametrize(
    ("build", "expected", "params"), UPSERTS, ids=[str(n) for n in range(5)]
)
def test_upserts_and_missing_default(
    build: Callable[[], Query], expected: str, params: tuple[object, ...]
) -> None:
    query = build()
    assert query.sql.as_string(None) == expected
    assert query.params == params


def test_a_key_twice_in_an_upsert_body_is_a_400() -> None:
    refused = refusal(psycopg.errors.CardinalityViolation("cannot affect row"))
    assert refused is not None
    assert (refused.status, "same key twice" in refused.message) == (400, True)


ONE = {"Accept": "application/vnd.pgrst.object+json"}


def _update(where: list[tuple[str, str]], values: object, prefer: str) -> Query:
    headers = ONE | {"Prefer": prefer}
    return build_update(parse_update("customers", where, headers, values, CACHE), CACHE)


def _singular_insert(body: object, prefer: str) -> Query:
    headers = ONE | {"Prefer": prefer}
    return build_insert(parse_insert("customers", [], headers, body, CACHE), CACHE)


def _delete(where: list[tuple[str, str]], prefer: str) -> Query:
    headers = ONE | {"Prefer": prefer}
    return build_delete(parse_delete("customers", where, headers, CACHE), CACHE)


# A write that must answer one object counts its rows even when it returns
# none, and fails (so PostgreSQL undoes it) unless the count is 1. Each was
# run on PostgreSQL 15: one row answers, two rows fail with the marker.
SINGULAR_WRITES: list[tuple[Callable[[], Query], str, tuple[object, ...]]] = [
    (
        lambda: _update([("id", "eq.1")], {"vip": False}, ""),
        'WITH "pgf_0" AS (UPDATE "shop"."customers" AS "pgf_target" SET "vip" '
        '= "pgf_body"."vip" FROM '
        'json_populate_record(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" WHERE "pgf_target"."id" = %s::integer RETURNING 1) SELECT '
        "NULL::text AS body, (SELECT CASE WHEN count(*) = 1 THEN count(*) "
        "ELSE ('pgf-single-object:' || count(*))::bigint END FROM \"pgf_0\") AS "
        "total",
        ('{"vip": false}', "1"),
    ),
    (
        lambda: _update([("vip", "is.true")], {"vip": False}, "return=representation"),
        'WITH "pgf_0" AS (UPDATE "shop"."customers" AS "pgf_target" SET "vip" '
        '= "pgf_body"."vip" FROM '
        'json_populate_record(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" WHERE "pgf_target"."vip" IS TRUE RETURNING '
        '"pgf_target".*) SELECT (SELECT coalesce(json_agg(pgf_page.*), '
        '\'[]\')::text FROM (SELECT "pgf_0".* FROM "pgf_0") AS pgf_page) AS '
        "body, (SELECT CASE WHEN count(*) = 1 THEN count(*) ELSE "
        "('pgf-single-object:' || count(*))::bigint END FROM \"pgf_0\") AS "
        "total",
        ('{"vip": false}',),
    ),
    (
        lambda: _singular_insert([{"name": "a"}, {"vip": True}], "missing=default"),
        'WITH "pgf_write_1" AS (INSERT INTO "shop"."customers" AS '
        '"pgf_target" ("name") SELECT "pgf_body"."name" FROM '
        'json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" RETURNING 1), "pgf_write_2" AS (INSERT INTO '
        '"shop"."customers" AS "pgf_target" ("vip") SELECT "pgf_body"."vip" '
        'FROM json_populate_recordset(NULL::"shop"."customers", %s::json) AS '
        '"pgf_body" RETURNING 1), "pgf_0" AS (SELECT * FROM "pgf_write_1" '
        'UNION ALL SELECT * FROM "pgf_write_2") SELECT NULL::text AS body, '
        "(SELECT CASE WHEN count(*) = 1 THEN count(*) ELSE "
        "('pgf-single-object:' || count(*))::bigint END FROM \"pgf_0\") AS "
        "total",
        ('[{"name": "a"}]', '[{"vip": true}]'),
    ),
    (
        lambda: _delete([("id", "eq.3")], "return=headers-only"),
        'WITH "pgf_0" AS (DELETE FROM "shop"."customers" AS "pgf_target" '
        'WHERE "pgf_target"."id" = %s::integer RETURNING "pgf_target"."id") '
        "SELECT (SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM "
        '(SELECT "pgf_0"."id" AS "id" FROM "pgf_0") AS pgf_page) AS body, '
        "(SELECT CASE WHEN count(*) = 1 THEN count(*) ELSE "
        "('pgf-single-object:' || count(*))::bigint END FROM \"pgf_0\") AS "
        "total",
        ("3",),
    ),
    (
        lambda: build_rpc(
            parse_rpc("big_orders", [("id", "eq.10")], {}, CACHE, ONE), CACHE, 100
        ),
        "SELECT pgf_call.body AS body, CASE WHEN "
        "json_array_length(pgf_call.body::json) = 1 THEN "
        "json_array_length(pgf_call.body::json) ELSE ('pgf-single-object:' || "
        "json_array_length(pgf_call.body::json))::bigint END AS total FROM "
        "(SELECT (SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM "
        '(SELECT "pgf_0".* FROM "shop"."big_orders"() AS "pgf_0" WHERE '
        '"pgf_0"."id" = %s::bigint LIMIT %s) AS pgf_page) AS body) AS pgf_call',
        ("10", 100),
    ),
]


@pytest.mark.parametrize(
    ("build", "expected", "params"),
    SINGULAR_WRITES,
    ids=["update", "update-representation", "insert-batches", "delete", "rpc"],
)
def test_one_object_writes_are_undone_unless_one_row(
    build: Callable[[], Query], expected: str, params: tuple[object, ...]
) -> None:
    query = build()
    assert query.sql.as_string(None) == expected
    assert query.params == params


def test_the_failed_one_object_check_is_a_406() -> None:
    marker = psycopg.errors.InvalidTextRepresentation(
        'invalid input syntax for type bigint: "pgf-single-object:2"'
    )
    wrapped = RequestError("a value is not valid for its column")
    wrapped.__cause__ = marker
    for error in (marker, wrapped):
        refused = refusal(error)
        assert refused is not None
        assert refused.status == 406
        assert "but 2 rows matched; nothing was changed" in refused.message
    plain = psycopg.errors.InvalidTextRepresentation('for type integer: "x"')
    assert refusal(plain) is None


@pytest.mark.parametrize(("build", "expected", "params"), _writes())
def test_writes(
    build: Callable[[], Query], expected: str, params: tuple[object, ...]
) -> None:
    query = build()
    assert query.sql.as_string(None) == expected
    assert query.params == params


RPCS: list[tuple[str, list[tuple[str, str]], object, str, tuple[object, ...]]] = [
    (
        "add",
        [],
        {"a": 1, "b": "2"},
        'SELECT to_json("shop"."add"("a" := %s::integer, "b" := %s::integer))::text'
        " AS body, NULL::bigint AS total",
        ("1", "2"),
    ),
    (
        "big_orders",
        [("limit", "500")],
        {},
        "SELECT (SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM (SELECT "
        '"pgf_0".* FROM "shop"."big_orders"() AS "pgf_0" LIMIT %s) AS pgf_page)'
        " AS body, NULL::bigint AS total",
        (100,),
    ),
    (
        "numbers",
        [("n", "3"), ("limit", "2"), ("offset", "1")],
        None,
        "SELECT (SELECT coalesce(json_agg(pgf_page.pgf_value), '[]')::text FROM "
        '(SELECT "pgf_0".pgf_value FROM "shop"."numbers"("n" := %s::integer) AS '
        '"pgf_0"(pgf_value) LIMIT %s OFFSET %s) AS pgf_page)'
        " AS body, NULL::bigint AS total",
        ("3", 2, 1),
    ),
    (
        "touch",
        [],
        {},
        'SELECT (SELECT \'null\'::text FROM "shop"."touch"() AS "pgf_0")'
        " AS body, NULL::bigint AS total",
        (),
    ),
    (
        "tagged",
        [],
        {"tags": ["a", "b"], "meta": {"k": [1]}},
        'SELECT to_json("shop"."tagged"("tags" := ARRAY(SELECT '
        'json_array_elements_text(%s::json))::text[], "meta" := %s::jsonb))::text'
        " AS body, NULL::bigint AS total",
        ('["a", "b"]', '{"k": [1]}'),
    ),
    (
        "add",
        [],
        {"a": True, "b": None},
        'SELECT to_json("shop"."add"("a" := %s::integer, "b" := %s::integer))::text'
        " AS body, NULL::bigint AS total",
        ("true", None),
    ),
]


@pytest.mark.parametrize(("function", "params", "body", "expected", "values"), RPCS)
def test_rpc(
    function: str,
    params: list[tuple[str, str]],
    body: object,
    expected: str,
    values: tuple[object, ...],
) -> None:
    method = "GET" if body is None else "POST"
    query = build_rpc(
        parse_rpc(function, params, body, CACHE, method=method), CACHE, 100
    )
    assert query.sql.as_string(None) == expected
    assert query.params == values


ROWS = (
    "SELECT (SELECT coalesce(json_agg(pgf_page.*), '[]')::text FROM ({}) AS "
    "pgf_page) AS body, NULL::bigint AS total"
)


def _rows(inner: str) -> str:
    return ROWS.format(inner)


# GET /rpc/<function>?<query>; each was run on PostgreSQL 15.
RPC_GETS: list[tuple[str, str, tuple[object, ...]]] = [
    (
        "big_orders?min_total=8&select=id,buyer:customers(name)&status=eq.new"
        "&order=id.desc&limit=5",
        _rows(
            'SELECT "pgf_0"."id" AS "id", (SELECT row_to_json("pgf_row_1".*) FROM '
            '(SELECT "pgf_1"."name" AS "name" FROM "shop"."customers" AS "pgf_1" '
            'WHERE "pgf_1"."id" = "pgf_0"."customer_id") AS "pgf_row_1") AS "buyer" '
            'FROM "shop"."big_orders"("min_total" := %s::numeric) AS "pgf_0" WHERE '
            '"pgf_0"."status" = %s::text ORDER BY "pgf_0"."id" DESC LIMIT %s'
        ),
        ("8", "new", 5),
    ),
    (
        "by_tags?tags=a&tags=c&select=id&order=id",
        _rows(
            'SELECT "pgf_0"."id" AS "id" FROM "shop"."by_tags"("tags" := ARRAY('
            'SELECT json_array_elements_text(%s::json))::text[]) AS "pgf_0" '
            'ORDER BY "pgf_0"."id" ASC LIMIT %s'
        ),
        ('["a", "c"]', 100),
    ),
    (
        "by_tags?tags={b}&total=gte.10&select=id,total",
        _rows(
            'SELECT "pgf_0"."id" AS "id", "pgf_0"."total" AS "total" FROM '
            '"shop"."by_tags"("tags" := %s::text[]) AS "pgf_0" WHERE '
            '"pgf_0"."total" >= %s::numeric LIMIT %s'
        ),
        ("{b}", "10", 100),
    ),
    (
        'lookup?meta={"k":[1]}',
        'SELECT to_json("shop"."lookup"("meta" := %s::jsonb))::text AS body, '
        "NULL::bigint AS total",
        ('{"k":[1]}',),
    ),
    (
        "big_orders?select=id,customers!inner(name)&customers.name=eq.Grace",
        _rows(
            'SELECT "pgf_0"."id" AS "id", (SELECT row_to_json("pgf_row_1".*) FROM '
            '(SELECT "pgf_1"."name" AS "name" FROM "shop"."customers" AS "pgf_1" '
            'WHERE "pgf_1"."id" = "pgf_0"."customer_id" AND "pgf_1"."name" = '
            '%s::text) AS "pgf_row_1") AS "customers" FROM "shop"."big_orders"() '
            'AS "pgf_0" WHERE EXISTS (SELECT 1 FROM "shop"."customers" AS '
            '"pgf_inner_0_0" WHERE "pgf_inner_0_0"."id" = "pgf_0"."customer_id" '
            'AND "pgf_inner_0_0"."name" = %s::text) LIMIT %s'
        ),
        ("Grace", "Grace", 100),
    ),
]


@pytest.mark.parametrize(
    ("url", "expected", "values"), RPC_GETS, ids=[r[0][:40] for r in RPC_GETS]
)
def test_rpc_get(url: str, expected: str, values: tuple[object, ...]) -> None:
    function, _, rest = url.partition("?")
    request = parse_rpc(function, _q(rest), None, CACHE, method="GET")
    query = build_rpc(request, CACHE, 100)
    assert query.sql.as_string(None) == expected
    assert query.params == values


def test_rpc_refuses_an_object_for_a_plain_argument() -> None:
    with pytest.raises(RequestError, match="plain value"):
        build_rpc(parse_rpc("add", [], {"a": {"x": 1}, "b": 1}, CACHE), CACHE, 10)


def test_a_body_json_cannot_carry_is_a_payload_error() -> None:
    request = parse_insert("customers", [], {}, {"name": float("nan")}, CACHE)
    with pytest.raises(PayloadError):
        build_insert(request, CACHE)


def test_every_identifier_is_quoted_through_sql_identifier() -> None:
    query = _read('we"ird?"co\\"l"=eq.1&select="co\\"l",n&n=eq.2')
    assert query.sql.as_string(None) == _page(
        'SELECT "pgf_0"."co""l" AS "co""l", "pgf_0"."n" AS "n" FROM "shop"."we""ird" '
        'AS "pgf_0" WHERE "pgf_0"."co""l" = %s::text AND "pgf_0"."n" = %s::"My Type" '
        "LIMIT %s"
    )
    assert query.params == ("1", "2", 100)


def test_hostile_schema_and_alias_names_stay_quoted() -> None:
    relation = Relation("t", "table", {"x": Column("x", "integer")})
    cache = SchemaCache('s"; DROP TABLE t; --', {"t": relation})
    request = parse_read("t", [("select", '"a\\"b; --":x')], {}, cache)
    text = build_read(request, cache, 1).sql.as_string(None)
    assert '"s""; DROP TABLE t; --"."t"' in text
    assert 'AS "a""b; --"' in text


@pytest.mark.parametrize(
    "bad_type", ["int; drop", "integer)--", 'a"b', "x(1", "text'", "int /*"]
)
def test_a_strange_catalog_type_is_refused_not_rendered(bad_type: str) -> None:
    relation = Relation("t", "table", {"x": Column("x", bad_type)})
    cache = SchemaCache("s", {"t": relation})
    request = parse_read("t", [("x", "eq.1")], {}, cache)
    with pytest.raises(RequestError, match="not supported"):
        build_read(request, cache, 10)


@pytest.mark.parametrize(
    ("column_type", "cast"),
    [
        ("character varying(80)", "character varying"),
        ("numeric(10,2)", "numeric"),
        ("timestamp(3) with time zone", "timestamp with time zone"),
        ("character(5)", "bpchar"),
        ('app."My Type"', '"app"."My Type"'),
        ('"char"', '"char"'),
        ("double precision", "double precision"),
    ],
)
def test_casts_drop_type_modifiers(column_type: str, cast: str) -> None:
    relation = Relation("t", "table", {"x": Column("x", column_type)})
    cache = SchemaCache("s", {"t": relation})
    query = build_read(parse_read("t", [("x", "eq.1")], {}, cache), cache, 10)
    assert f"= %s::{cast} LIMIT" in query.sql.as_string(None)


def test_max_rows_caps_the_limit_but_not_a_smaller_one() -> None:
    assert _read("customers?limit=3", max_rows=10).params == (3,)
    assert _read("customers?limit=30", max_rows=10).params == (10,)
