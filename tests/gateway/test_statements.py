"""Read statements composed once per request shape give what composing gives."""

from __future__ import annotations

import pytest
from pgfortress_gateway._nodes import Filter, ReadRequest
from pgfortress_gateway.grammar import parse_read
from pgfortress_gateway.sql import Query, build_read
from pgfortress_gateway.statements import Slot, StatementCache, read_shape

from tests.gateway.test_grammar import _q, make_cache
from tests.gateway.test_sql import OPERATORS, READS

CACHE = make_cache()
MAX_ROWS = 100
URLS = [(url, headers) for url, headers, _, _ in READS] + [
    (f"events?select=id&{filters}", {}) for filters, _, _ in OPERATORS
]


def _request(url: str, headers: dict[str, str] | None = None) -> ReadRequest:
    relation, _, rest = url.partition("?")
    return parse_read(relation, _q(rest) if rest else [], headers or {}, CACHE)


def _same(cached: Query, composed: Query) -> None:
    assert cached.sql.as_string(None) == composed.sql.as_string(None)
    assert cached.params == composed.params


@pytest.mark.parametrize(("url", "headers"), URLS, ids=[u[:50] for u, _ in URLS])
def test_a_cached_statement_is_the_composed_one_on_miss_and_hit(
    url: str, headers: dict[str, str]
) -> None:
    request = _request(url, headers)
    statements = StatementCache(CACHE, MAX_ROWS)
    composed = build_read(request, CACHE, MAX_ROWS)
    _same(statements.read(request), composed)
    _same(statements.read(request), composed)
    assert len(statements) == 1


SAME_SHAPE = [
    ("customers?id=eq.1", "customers?id=eq.2"),
    ("orders?status=in.(a,b)", "orders?status=in.(c,d,e)"),
    ("events?select=id&body=fts(english).cat", "events?select=id&body=fts(simple).dog"),
    (
        "customers?select=id,orders!inner(id)&orders.status=eq.new&name=like.a*",
        "customers?select=id,orders!inner(id)&orders.status=eq.old&name=like.b*",
    ),
    (
        "customers?or=(id.eq.1,and(vip.is.true,name.gt.m))",
        "customers?or=(id.eq.7,and(vip.is.true,name.gt.z))",
    ),
]


@pytest.mark.parametrize(("first", "second"), SAME_SHAPE)
def test_requests_differing_only_in_values_share_one_statement(
    first: str, second: str
) -> None:
    statements = StatementCache(CACHE, MAX_ROWS)
    for url in (first, second):
        request = _request(url)
        composed = build_read(request, CACHE, MAX_ROWS)
        _same(statements.read(request), composed)
    assert len(statements) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("customers?vip=is.true", "customers?vip=is.null"),
        ("customers?id=eq.1", "customers?id=neq.1"),
        ("customers?id=eq.1", "customers?id=not.eq.1"),
        ("customers?limit=5", "customers?limit=6"),
        ("customers?offset=0", "customers?offset=3"),
        ("events?select=id&body=fts.cat", "events?select=id&body=fts(english).cat"),
        ("customers?id=eq.1", "orders?id=eq.1"),
    ],
)
def test_what_reaches_the_text_or_a_constant_keeps_shapes_apart(
    first: str, second: str
) -> None:
    statements = StatementCache(CACHE, MAX_ROWS)
    for url in (first, second):
        request = _request(url)
        composed = build_read(request, CACHE, MAX_ROWS)
        _same(statements.read(request), composed)
    assert len(statements) == 2


def test_a_shape_holds_slots_in_place_of_every_bound_value() -> None:
    request = _request("orders?status=in.(a,b)&total=gt.5&tags=is.null")
    shape, values = read_shape(request)
    assert values == [["a", "b"], "5"]
    assert [f.value for f in shape.filters if isinstance(f, Filter)] == [
        Slot(0),
        Slot(1),
        "null",
    ]


def test_the_cache_keeps_at_most_its_size_and_forgets_the_oldest() -> None:
    statements = StatementCache(CACHE, MAX_ROWS, size=2)
    for url in ("customers?id=eq.1", "customers?name=eq.x", "orders?id=eq.1"):
        statements.read(_request(url))
    assert len(statements) == 2
    first = _request("customers?id=eq.9")
    _same(statements.read(first), build_read(first, CACHE, MAX_ROWS))
    assert len(statements) == 2
