"""PostgREST's URL grammar parsed into typed requests, checked against the catalog."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from pgfortress_gateway.errors import NotFoundError, PayloadError, RequestError
from pgfortress_gateway.grammar import (
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
    UpdateRequest,
    content_range,
    parse_delete,
    parse_insert,
    parse_prefer,
    parse_read,
    parse_rpc,
    parse_update,
    single_object,
)
from pgfortress_gateway.schema import (
    Column,
    ForeignKey,
    Function,
    Parameter,
    Relation,
    SchemaCache,
)

ORDERS_FK = ForeignKey(
    "orders_customer_id_fkey", ("customer_id",), "customers", ("id",)
)


# pg_type.typcategory of the types used here, as the catalog query reads it.
CATEGORIES = {
    "integer": "N",
    "bigint": "N",
    "numeric": "N",
    "numeric(10,2)": "N",
    "text": "S",
    "character varying(80)": "S",
    "boolean": "B",
    "timestamp with time zone": "D",
    "tstzrange": "R",
    "int4range": "R",
    "jsonb": "U",
    "tsvector": "U",
}


def _columns(*pairs: tuple[str, str]) -> dict[str, Column]:
    return {
        name: Column(
            name,
            kind,
            category="A" if kind.endswith("[]") else CATEGORIES.get(kind, ""),
        )
        for name, kind in pairs
    }


def make_cache() -> SchemaCache:
    """A small shop: customers, their orders, a view, a self-reference and rpc."""
    relations = [
        Relation(
            "customers",
            "table",
            _columns(
                ("id", "integer"),
                ("name", "text"),
                ("email", "character varying(80)"),
                ("vip", "boolean"),
                ("created_at", "timestamp with time zone"),
            ),
            primary_key=("id",),
        ),
        Relation(
            "orders",
            "table",
            _columns(
                ("id", "bigint"),
                ("customer_id", "integer"),
                ("total", "numeric(10,2)"),
                ("status", "text"),
                ("tags", "text[]"),
            ),
            primary_key=("id",),
            foreign_keys=(ORDERS_FK,),
        ),
        Relation("products", "view", _columns(("id", "integer"), ("price", "numeric"))),
        Relation(
            "employees",
            "table",
            _columns(("id", "integer"), ("manager_id", "integer")),
            primary_key=("id",),
            foreign_keys=(
                ForeignKey(
                    "employees_manager_fkey", ("manager_id",), "employees", ("id",)
                ),
            ),
        ),
        Relation(
            "shipments",
            "table",
            _columns(
                ("id", "integer"), ("sender_id", "integer"), ("receiver_id", "integer")
            ),
            foreign_keys=(
                ForeignKey(
                    "shipments_sender_fkey", ("sender_id",), "customers", ("id",)
                ),
                ForeignKey(
                    "shipments_receiver_fkey", ("receiver_id",), "customers", ("id",)
                ),
            ),
        ),
        Relation('we"ird', "table", _columns(('co"l', "text"), ("n", '"My Type"'))),
        Relation(
            "events",
            "table",
            _columns(
                ("id", "integer"),
                ("during", "tstzrange"),
                ("seats", "int4range"),
                ("tags", "text[]"),
                ("doc", "jsonb"),
                ("body", "text"),
                ("search", "tsvector"),
            ),
            primary_key=("id",),
        ),
    ]
    functions = [
        Function(
            "add", (Parameter("a", "integer"), Parameter("b", "integer")), "integer"
        ),
        Function(
            "big_orders",
            (Parameter("min_total", "numeric", has_default=True),),
            "orders",
            returns_set=True,
            volatility="stable",
        ),
        Function(
            "numbers",
            (Parameter("n", "integer"),),
            "integer",
            returns_set=True,
            volatility="immutable",
        ),
        Function("touch", (), "void"),
        Function(
            "tagged", (Parameter("tags", "text[]"), Parameter("meta", "jsonb")), "jsonb"
        ),
        Function(
            "by_tags",
            (Parameter("tags", "text[]"), Parameter("meta", "jsonb", True)),
            "shop.orders",
            returns_set=True,
            volatility="stable",
        ),
        Function("lookup", (Parameter("meta", "jsonb"),), "jsonb", volatility="stable"),
    ]
    return SchemaCache(
        "shop",
        {r.name: r for r in relations},
        {f.name: f for f in functions},
    )


CACHE = make_cache()
NO_HEADERS: Mapping[str, str] = {}


def _q(query: str) -> list[tuple[str, str]]:
    """Split a decoded query string; values may hold '=' and '&' is the separator."""
    pairs = []
    for part in query.split("&"):
        key, _, value = part.partition("=")
        pairs.append((key, value))
    return pairs


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("id=eq.1", (Filter("id", "eq", "1"),)),
        ("id=neq.1&name=gt.b", (Filter("id", "neq", "1"), Filter("name", "gt", "b"))),
        ("name=like.*ann*", (Filter("name", "like", "%ann%"),)),
        ("name=ilike.A%25", (Filter("name", "ilike", "A%25"),)),
        ("name=eq.a.b.c", (Filter("name", "eq", "a.b.c"),)),
        ("name=eq.", (Filter("name", "eq", ""),)),
        ("id=in.(1,2,3)", (Filter("id", "in", ("1", "2", "3")),)),
        ('name=in.("a,b",c,"d\\"e")', (Filter("name", "in", ("a,b", "c", 'd"e')),)),
        ("id=in.()", (Filter("id", "in", ()),)),
        ("vip=is.NULL", (Filter("vip", "is", "null"),)),
        ("vip=not.is.true", (Filter("vip", "is", "true", negated=True),)),
        ("id=not.in.(1,2)", (Filter("id", "in", ("1", "2"), negated=True),)),
        (
            "or=(id.eq.1,name.like.*x*)",
            (Logic("or", (Filter("id", "eq", "1"), Filter("name", "like", "%x%"))),),
        ),
        (
            'not.and=(id.gte.1,and(vip.is.true,name.eq."a,b"))',
            (
                Logic(
                    "and",
                    (
                        Filter("id", "gte", "1"),
                        Logic(
                            "and",
                            (Filter("vip", "is", "true"), Filter("name", "eq", "a,b")),
                        ),
                    ),
                    negated=True,
                ),
            ),
        ),
        ("or=(id.not.in.(1,2),not.or(id.lt.0))", None),
    ],
)
def test_filters(query: str, filters: tuple[Filter | Logic, ...] | None) -> None:
    request = parse_read("customers", _q(query), NO_HEADERS, CACHE)
    if filters is not None:
        assert request.filters == filters
    assert request.select == (Field("*"),)


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("tags=cs.{a,b}", (Filter("tags", "cs", "{a,b}"),)),
        ('tags=not.cd.{"a,b",c}', (Filter("tags", "cd", '{"a,b",c}', True),)),
        (
            "during=ov.[2024-01-01,2024-02-01)",
            (Filter("during", "ov", "[2024-01-01,2024-02-01)"),),
        ),
        ("seats=sl.(1,5]", (Filter("seats", "sl", "(1,5]"),)),
        ("seats=sr.[1,5)", (Filter("seats", "sr", "[1,5)"),)),
        ("seats=nxl.[1,5)&seats=nxr.[1,9)", None),
        ("seats=not.adj.[5,6)", (Filter("seats", "adj", "[5,6)", True),)),
        ('doc=cs.{"k":1}', (Filter("doc", "cs", '{"k":1}'),)),
        ("id=isdistinct.3", (Filter("id", "isdistinct", "3"),)),
        ("body=match.^a.*z$", (Filter("body", "match", "^a.*z$"),)),
        ("body=not.imatch.ABC", (Filter("body", "imatch", "ABC", True),)),
        ("search=fts.cat | dog", (Filter("search", "fts", "cat | dog"),)),
        (
            "body=fts(english).cats",
            (Filter("body", "fts", "cats", config="english"),),
        ),
        (
            "body=not.wfts(simple).cat or dog",
            (Filter("body", "wfts", "cat or dog", True, "simple"),),
        ),
        ("search=plfts.fat cats&search=phfts(german).die Katze", None),
        (
            'or=(tags.cs.{a,"b,c"},seats.ov."[1,5)",body.plfts(english).fat cats)',
            (
                Logic(
                    "or",
                    (
                        Filter("tags", "cs", '{a,"b,c"}'),
                        Filter("seats", "ov", "[1,5)"),
                        Filter("body", "plfts", "fat cats", config="english"),
                    ),
                ),
            ),
        ),
        (
            "and=(id.isdistinct.1,not.or(search.not.fts.x,tags.ov.{y}))",
            (
                Logic(
                    "and",
                    (
                        Filter("id", "isdistinct", "1"),
                        Logic(
                            "or",
                            (
                                Filter("search", "fts", "x", True),
                                Filter("tags", "ov", "{y}"),
                            ),
                            negated=True,
                        ),
                    ),
                ),
            ),
        ),
    ],
)
def test_array_range_and_text_search_filters(
    query: str, filters: tuple[Filter | Logic, ...] | None
) -> None:
    request = parse_read("events", _q(query), NO_HEADERS, CACHE)
    if filters is not None:
        assert request.filters == filters


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("id=sl.[1,2)", "'sl' applies to range columns; 'id' is 'integer'"),
        ("tags=adj.{a}", "'adj' applies to range columns; 'tags' is 'text[]'"),
        ("body=cs.{a}", "'cs' applies to array, range and jsonb columns"),
        ("id=not.ov.{1}", "'ov' applies to array and range columns"),
        ("id=fts.cat", "'fts' applies to text, json and tsvector columns"),
        ('or=(seats.adj."[1,2)",id.wfts.x)', "'wfts' applies to text, json"),
        ("id=eq(english).1", "only full-text operators take a (configuration)"),
        ("body=fts(eng lish).x", "bad text search configuration 'eng lish'"),
        ("body=fts(x';--).x", "bad text search configuration"),
        ("body=fts().x", "bad text search configuration ''"),
        ("body=fts(a)(b).x", "unknown operator 'fts(a)(b)'"),
        ("body=FTS.x", "unknown operator 'FTS'"),
        ("or=(tags.cs.{a,b)", "unclosed parenthesis or brace"),
        ("or=(seats.ov.[1,5))", "unbalanced ')'"),
    ],
)
def test_operators_that_do_not_apply_are_refused(query: str, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_read("events", _q(query), NO_HEADERS, CACHE)
    assert message in str(caught.value)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("order=id", (Order("id"),)),
        ("order=id.desc,name.asc", (Order("id", True), Order("name"))),
        ("order=name.desc.nullslast", (Order("name", True, "last"),)),
        ("order=name.nullsfirst", (Order("name", False, "first"),)),
    ],
)
def test_order(query: str, order: tuple[Order, ...]) -> None:
    assert parse_read("customers", _q(query), NO_HEADERS, CACHE).order == order


@pytest.mark.parametrize(
    ("query", "headers", "limit", "offset"),
    [
        ("", {}, None, 0),
        ("limit=10&offset=5", {}, 10, 5),
        ("", {"Range": "0-9"}, 10, 0),
        ("", {"range": "items=20-29", "Range-Unit": "items"}, 10, 20),
        ("", {"Range": "5-"}, None, 5),
        ("limit=3", {"Range": "0-9"}, 3, 0),
        ("offset=5&limit=100", {"Range": "0-9"}, 5, 5),
    ],
)
def test_paging(
    query: str, headers: dict[str, str], limit: int | None, offset: int
) -> None:
    request = parse_read("customers", _q(query) if query else [], headers, CACHE)
    assert (request.limit, request.offset) == (limit, offset)


def test_select_with_alias_and_both_embedding_directions() -> None:
    request = parse_read(
        "orders",
        [("select", "id, buyer:customers(full:name), n:total")],
        NO_HEADERS,
        CACHE,
    )
    assert request.select == (
        Field("id"),
        Embed("customers", ORDERS_FK, False, (Field("name", "full"),), alias="buyer"),
        Field("total", "n"),
    )
    many = parse_read("customers", [("select", "*,orders(*)")], NO_HEADERS, CACHE)
    assert many.select[1] == Embed("orders", ORDERS_FK, True, (Field("*"),))


def test_embedded_filters_order_and_limit_apply_to_the_embed() -> None:
    params = [
        ("select", "id,o:orders!inner(id)"),
        ("o.total", "gt.10"),
        ("o.order", "id.desc"),
        ("o.limit", "2"),
        ("id", "lt.5"),
    ]
    request = parse_read("customers", params, NO_HEADERS, CACHE)
    embed = request.select[1]
    assert isinstance(embed, Embed)
    assert embed.filters == (Filter("total", "gt", "10"),)
    assert (embed.order, embed.limit, embed.inner) == ((Order("id", True),), 2, True)
    assert request.filters == (Filter("id", "lt", "5"),)


@pytest.mark.parametrize(
    ("select", "fk"),
    [
        ("manager:employees!employees_manager_fkey(id)", "employees_manager_fkey"),
        ("shipments!sender_id(id)", "shipments_sender_fkey"),
    ],
)
def test_hint_picks_one_foreign_key(select: str, fk: str) -> None:
    relation = "employees" if "manager" in select else "customers"
    request = parse_read(relation, [("select", select)], NO_HEADERS, CACHE)
    embed = request.select[0]
    assert isinstance(embed, Embed)
    assert embed.foreign_key.name == fk


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", Preferences()),
        ("return=representation", Preferences("representation")),
        ("return=headers-only, count=exact", Preferences("headers-only", True)),
        ("count=exact,return=minimal,tx=commit", Preferences("minimal", True)),
        ("return=bogus", Preferences()),
        (
            "resolution=merge-duplicates, missing=default",
            Preferences(resolution="merge-duplicates", missing_default=True),
        ),
        (
            "return=representation,resolution=ignore-duplicates,missing=null",
            Preferences("representation", resolution="ignore-duplicates"),
        ),
    ],
)
def test_prefer(header: str, expected: Preferences) -> None:
    assert parse_prefer(header) == expected


def test_read_reads_prefer_case_insensitively() -> None:
    request = parse_read("customers", [], {"PREFER": "count=exact"}, CACHE)
    assert request == ReadRequest(
        "customers", (Field("*"),), prefer=Preferences(count=True)
    )


def test_insert_takes_the_union_of_keys_or_the_columns_param() -> None:
    body = [{"name": "a"}, {"name": "b", "vip": True}]
    request = parse_insert(
        "customers", [], {"Prefer": "return=representation"}, body, CACHE
    )
    assert request == InsertRequest(
        "customers",
        ("name", "vip"),
        ({"name": "a"}, {"name": "b", "vip": True}),
        (Field("*"),),
        Preferences("representation"),
    )
    narrowed = parse_insert(
        "customers", [("columns", "name")], NO_HEADERS, {"name": "a", "junk": 1}, CACHE
    )
    assert (narrowed.columns, narrowed.rows) == (("name",), ({"name": "a"},))


@pytest.mark.parametrize(
    ("relation", "params", "prefer", "target"),
    [
        ("customers", [], "resolution=merge-duplicates", ("id",)),
        (
            "customers",
            [("on_conflict", "email")],
            "resolution=merge-duplicates",
            ("email",),
        ),
        (
            "shipments",
            [("on_conflict", 'sender_id,"receiver_id"')],
            "resolution=ignore-duplicates",
            ("sender_id", "receiver_id"),
        ),
        ("customers", [], "return=representation", ()),
    ],
)
def test_upsert_takes_on_conflict_or_the_primary_key(
    relation: str, params: list[tuple[str, str]], prefer: str, target: tuple[str, ...]
) -> None:
    body = {"name": "a"} if relation == "customers" else {"id": 1}
    request = parse_insert(relation, params, {"Prefer": prefer}, body, CACHE)
    assert request.on_conflict == target


@pytest.mark.parametrize(
    ("relation", "params", "prefer", "message"),
    [
        (
            "shipments",
            [],
            "resolution=merge-duplicates",
            "'shipments' has no primary key",
        ),
        (
            "customers",
            [("on_conflict", "nope")],
            "resolution=merge-duplicates",
            "column 'nope'",
        ),
        ("customers", [("on_conflict", "id")], "return=minimal", "on_conflict needs"),
        ("customers", [], "resolution=merge", "merge-duplicates or ignore-duplicates"),
    ],
)
def test_bad_upserts(
    relation: str, params: list[tuple[str, str]], prefer: str, message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        parse_insert(relation, params, {"Prefer": prefer}, {"id": 1}, CACHE)


def test_missing_default_groups_rows_by_the_columns_they_name() -> None:
    body = [
        {"name": None},
        {"vip": True},
        {"name": "b"},
        {},
        {"vip": False, "name": "c"},
    ]
    request = parse_insert("customers", [], {"Prefer": "missing=default"}, body, CACHE)
    assert request.columns == ("name", "vip")
    assert request.batches() == [
        (("name",), [{"name": None}, {"name": "b"}]),
        (("vip",), [{"vip": True}]),
        ((), [{}]),
        (("name", "vip"), [{"vip": False, "name": "c"}]),
    ]
    plain = parse_insert("customers", [], {}, body, CACHE)
    assert plain.batches() == [(("name", "vip"), list(plain.rows))]


def test_missing_default_allows_an_empty_object_but_not_too_many_column_sets() -> None:
    prefer = {"Prefer": "missing=default"}
    assert parse_insert("customers", [], prefer, {}, CACHE).batches() == [((), [{}])]
    names = list(make_cache().relations["events"].columns)
    rows = [
        {name: 1 for bit, name in enumerate(names) if mask >> bit & 1}
        for mask in range(101)
    ]
    with pytest.raises(PayloadError, match="at most 100 different sets"):
        parse_insert("events", [], prefer, rows, CACHE)
    parse_insert("events", [], prefer, rows[:100], CACHE)


def test_update_and_delete_need_a_filter_and_keep_it() -> None:
    update = parse_update(
        "customers", [("id", "eq.1")], NO_HEADERS, {"vip": True}, CACHE
    )
    assert update == UpdateRequest(
        "customers", {"vip": True}, (Filter("id", "eq", "1"),), (Field("*"),)
    )
    delete = parse_delete("orders", [("id", "in.(1,2)"), ("select", "id")], {}, CACHE)
    assert delete == DeleteRequest(
        "orders", (Filter("id", "in", ("1", "2")),), (Field("id"),)
    )


def test_rpc_arguments_in_declared_order() -> None:
    request = parse_rpc("add", [], {"b": 2, "a": 1}, CACHE)
    assert request.arguments == (("a", 1), ("b", 2))
    from_query = parse_rpc(
        "numbers", [("n", "3"), ("limit", "2")], None, CACHE, method="GET"
    )
    assert (from_query.arguments, from_query.limit) == ((("n", "3"),), 2)
    assert parse_rpc("big_orders", [], {}, CACHE).arguments == ()


def test_rpc_get_takes_arguments_and_shapes_the_returned_rows() -> None:
    params = [
        ("min_total", "10"),
        ("select", "id,buyer:customers(name)"),
        ("status", "eq.new"),
        ("order", "id.desc"),
        ("limit", "5"),
    ]
    request = parse_rpc("big_orders", params, None, CACHE, method="GET")
    assert request == RpcRequest(
        "big_orders",
        (("min_total", "10"),),
        limit=5,
        select=(
            Field("id"),
            Embed("customers", ORDERS_FK, False, (Field("name"),), alias="buyer"),
        ),
        filters=(Filter("status", "eq", "new"),),
        order=(Order("id", True),),
        textual=True,
    )


def test_rpc_post_filters_the_returned_rows_too() -> None:
    request = parse_rpc("big_orders", [("id", "gt.1")], {"min_total": 5}, CACHE)
    assert request.arguments == (("min_total", 5),)
    assert request.filters == (Filter("id", "gt", "1"),)
    assert (request.select, request.textual) == ((Field("*"),), False)


def test_rpc_get_repeated_array_argument_is_a_list() -> None:
    params = [("tags", "a"), ("tags", "b"), ("tags", "c")]
    request = parse_rpc("by_tags", params, None, CACHE, method="HEAD")
    assert request.arguments == (("tags", ["a", "b", "c"]),)


def test_rpc_get_may_ask_for_one_object() -> None:
    one = {"Accept": "application/vnd.pgrst.object+json"}
    assert parse_rpc("big_orders", [], None, CACHE, one, method="GET").singular
    assert not parse_rpc(
        "lookup", [("meta", "{}")], None, CACHE, one, method="GET"
    ).singular


@pytest.mark.parametrize(
    ("function", "method", "params", "status", "message"),
    [
        (
            "add",
            "GET",
            [("a", "1"), ("b", "2")],
            405,
            "'add' is volatile: call it with POST",
        ),
        ("touch", "HEAD", [], 405, "call it with POST"),
        (
            "numbers",
            "GET",
            [("n", "1"), ("n", "2")],
            400,
            "'n' is given more than once",
        ),
        (
            "numbers",
            "GET",
            [("n", "1"), ("x", "2")],
            400,
            "'numbers' has no such argument",
        ),
        (
            "numbers",
            "GET",
            [("n", "1"), ("limit", "1"), ("limit", "2")],
            400,
            "limit is given more than once",
        ),
        ("lookup", "GET", [], 400, "missing argument(s) for 'lookup': meta"),
        ("big_orders", "GET", [("nope", "eq.1")], 400, "column 'nope' does not exist"),
        ("big_orders", "GET", [("select", "id,nope")], 400, "column 'nope'"),
        ("big_orders", "GET", [("on_conflict", "id")], 400, "unexpected parameter"),
        ("nope", "GET", [], 404, "no function 'nope'"),
    ],
)
def test_bad_rpc_gets(
    function: str,
    method: str,
    params: list[tuple[str, str]],
    status: int,
    message: str,
) -> None:
    with pytest.raises(RequestError) as caught:
        parse_rpc(function, params, None, CACHE, method=method)
    assert (caught.value.status, message in str(caught.value)) == (status, True)


@pytest.mark.parametrize(
    ("offset", "returned", "total", "expected"),
    [(0, 10, 42, "0-9/42"), (5, 0, 5, "*/5"), (10, 3, None, "10-12/*")],
)
def test_content_range(
    offset: int, returned: int, total: int | None, expected: str
) -> None:
    assert content_range(offset, returned, total) == expected


_WIDE = ",".join(f"c{n}:id" for n in range(201))
_MANY_EMBEDS = ",".join(f"o{n}:orders(id)" for n in range(21))
BAD_READS: list[tuple[str, str, dict[str, str], type[Exception], str]] = [
    ("customers", "select=id,id", {}, RequestError, "names 'id' more than once"),
    ("customers", "select=name,name:id", {}, RequestError, "more than once"),
    ("customers", f"select={_WIDE}", {}, RequestError, "at most 200 per request"),
    ("customers", f"select={_MANY_EMBEDS}", {}, RequestError, "at most 20 per"),
    ("nope", "", {}, NotFoundError, "no relation 'nope'"),
    ("orders", "status=fts." + "!" * 1001, {}, RequestError, "longer than 1000"),
    ("customers;drop", "", {}, NotFoundError, "no relation"),
    ("customers", "nope=eq.1", {}, RequestError, "column 'nope'"),
    ("customers", "id;drop table x=eq.1", {}, RequestError, "does not exist"),
    ("customers", '"id"x=eq.1', {}, RequestError, "quote"),
    ("customers", "id=foo.1", {}, RequestError, "unknown operator 'foo'"),
    ("customers", "id=eq", {}, RequestError, "needs a value"),
    ("customers", "id=1", {}, RequestError, "unknown operator"),
    ("customers", "id=not.eq", {}, RequestError, "needs a value"),
    ("customers", "id=in.1,2", {}, RequestError, "parentheses"),
    ("customers", "id=in.(1,2", {}, RequestError, "parentheses"),
    ("customers", 'id=in.("1,2)', {}, RequestError, "unclosed"),
    ("customers", "id=in.(1,(2))", {}, RequestError, "quote values"),
    ("orders", "tags=in.(a,b)", {}, RequestError, "array column"),
    ("customers", "vip=is.maybe", {}, RequestError, "'is' takes"),
    ("customers", "or=id.eq.1", {}, RequestError, "parentheses"),
    ("customers", "or=()", {}, RequestError, "at least one"),
    ("customers", "or=(id.eq.1,nope.eq.2)", {}, RequestError, "column 'nope'"),
    ("customers", "or=(id)", {}, RequestError, "column.op.value"),
    ("customers", "or=(id.eq.1))", {}, RequestError, "unbalanced"),
    ("customers", "order=nope.asc", {}, RequestError, "column 'nope'"),
    ("customers", "order=id.up", {}, RequestError, "bad order term"),
    ("customers", "order=id.desc.nullsmiddle", {}, RequestError, "bad order term"),
    ("customers", "order=id&order=name", {}, RequestError, "more than once"),
    ("customers", "limit=-1", {}, RequestError, "non-negative"),
    ("customers", "limit=ten", {}, RequestError, "non-negative"),
    ("customers", "offset=1e3", {}, RequestError, "non-negative"),
    ("customers", "limit=" + "9" * 40, {}, RequestError, "non-negative"),
    ("customers", "", {"Range": "9-0"}, RequestError, "last < first"),
    ("customers", "", {"Range": "a-b"}, RequestError, "bad Range"),
    (
        "customers",
        "",
        {"Range": "0-9", "Range-Unit": "bytes"},
        RequestError,
        "bad Range",
    ),
    ("customers", "select=nope", {}, RequestError, "column 'nope'"),
    ("customers", "select=id,,name", {}, RequestError, "empty item"),
    ("customers", "select=id::text", {}, RequestError, "casts"),
    ("customers", "select=name->>x", {}, RequestError, "JSON paths"),
    ("customers", "select=a:b:id", {}, RequestError, "bad alias"),
    ("customers", "select=" + "x" * 70 + ":id", {}, RequestError, "longer than"),
    ("customers", "select=products(*)", {}, RequestError, "no foreign key"),
    ("customers", "select=nowhere(*)", {}, RequestError, "no relation 'nowhere'"),
    ("customers", "select=shipments(*)", {}, RequestError, "disambiguate"),
    ("employees", "select=employees(*)", {}, RequestError, "disambiguate"),
    ("customers", "select=orders!nokey(*)", {}, RequestError, "matching 'nokey'"),
    ("customers", "select=orders(id)x", {}, RequestError, "after ')'"),
    ("customers", "select=orders(nope)", {}, RequestError, "column 'nope'"),
    ("customers", "select=id&select=name", {}, RequestError, "more than once"),
    ("customers", "orders.total=gt.1", {}, RequestError, "not an embedded"),
    ("customers", "select=*,orders(*)&orders.nope=eq.1", {}, RequestError, "'nope'"),
    ("customers", ".id=eq.1", {}, RequestError, "empty name"),
    ("customers", "\uff49\uff44=eq.1", {}, RequestError, "does not exist"),
    ("customers", "id\u200b=eq.1", {}, RequestError, "does not exist"),
    ("customers", "", {"Prefer": "count=planned"}, RequestError, "count=exact"),
]


@pytest.mark.parametrize(
    ("relation", "query", "headers", "error", "message"),
    BAD_READS,
    ids=[f"{r[0]}?{r[1]}{r[2]}"[:50] for r in BAD_READS],
)
def test_bad_reads_are_refused_with_a_clear_message(
    relation: str,
    query: str,
    headers: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as caught:
        parse_read(relation, _q(query) if query else [], headers, CACHE)
    assert type(caught.value) is error
    assert message in str(caught.value)
    assert len(str(caught.value)) < 240


@pytest.mark.parametrize(
    ("body", "params", "message"),
    [
        ([], [], "non-empty array"),
        ("text", [], "JSON object"),
        (42, [], "JSON object"),
        ([{"name": "a"}, 3], [], "array of objects"),
        ({"nope": 1}, [], "column 'nope'"),
        ({}, [], "no column"),
        ({"name": "a"}, [("columns", "name,nope")], "column 'nope'"),
        ({"name": "a"}, [("on_conflict", "id")], "on_conflict needs Prefer"),
        ({"name": "a"}, [("id", "eq.1")], "unexpected parameter"),
    ],
)
def test_bad_inserts(body: object, params: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(RequestError, match=message):
        parse_insert("customers", params, NO_HEADERS, body, CACHE)


@pytest.mark.parametrize(
    ("params", "body", "error", "message"),
    [
        ([], {"vip": True}, RequestError, "add a filter such as"),
        ([("select", "id")], {"vip": True}, RequestError, "add a filter"),
        ([("id", "eq.1")], [], PayloadError, "JSON object"),
        ([("id", "eq.1")], {}, PayloadError, "JSON object"),
        ([("id", "eq.1")], {"nope": 1}, RequestError, "column 'nope'"),
        (
            [("id", "eq.1"), ("limit", "1")],
            {"vip": True},
            RequestError,
            "not supported",
        ),
    ],
)
def test_bad_updates(
    params: list[tuple[str, str]], body: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_update("customers", params, NO_HEADERS, body, CACHE)


def test_delete_without_filter_is_refused() -> None:
    with pytest.raises(RequestError, match=r"add a filter such as \?id=eq.1"):
        parse_delete("customers", [], NO_HEADERS, CACHE)


@pytest.mark.parametrize(
    ("function", "params", "body", "error", "message"),
    [
        ("nope", [], {}, NotFoundError, "no function 'nope'"),
        ("add", [], {"a": 1}, RequestError, "missing argument"),
        ("add", [], {"a": 1, "b": 2, "c": 3}, RequestError, "no argument 'c'"),
        ("add", [], [1, 2], PayloadError, "JSON object"),
        ("add", [("x", "1")], {"a": 1, "b": 2}, RequestError, "unexpected parameter"),
        ("numbers", [("n", "1"), ("limit", "x")], None, RequestError, "non-negative"),
    ],
)
def test_bad_rpc(
    function: str,
    params: list[tuple[str, str]],
    body: object,
    error: type[Exception],
    message: str,
) -> None:
    method = "GET" if body is None else "POST"
    with pytest.raises(error, match=message):
        parse_rpc(function, params, body, CACHE, method=method)


def test_long_input_is_not_echoed_in_full() -> None:
    with pytest.raises(RequestError) as caught:
        parse_read("customers", [("x" * 5000, "eq.1")], NO_HEADERS, CACHE)
    assert len(caught.value.message) < 200


# What the official clients send on every request: postgrest-py names the
# schema in both profile headers, postgrest-js asks for one object on single().
CLIENT_HEADERS = {
    "Accept": "application/json",
    "Accept-Profile": "shop",
    "Content-Profile": "shop",
    "Content-Type": "application/json",
    "X-Client-Info": "supabase-py/postgrest-py",
}


@pytest.mark.parametrize(
    ("accept", "singular"),
    [
        ("", False),
        ("application/json", False),
        ("application/vnd.pgrst.array+json;nulls=stripped", False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", False),
        ("application/vnd.pgrst.object+json", True),
        ("application/vnd.pgrst.object+json;nulls=stripped", True),
        ("application/json;q=0.5, application/vnd.pgrst.object+json", True),
        ("application/vnd.pgrst.object+json;q=0, application/json", False),
    ],
)
def test_accept_chooses_an_array_or_one_object(accept: str, singular: bool) -> None:
    headers = CLIENT_HEADERS | {"Accept": accept}
    assert parse_read("customers", [], headers, CACHE).singular is singular


@pytest.mark.parametrize(
    "accept", ["text/csv", "application/geo+json", "application/json;q=0"]
)
def test_accept_we_cannot_answer_is_406(accept: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_read("customers", [], {"Accept": accept}, CACHE)
    assert caught.value.status == 406


def test_the_clients_usual_headers_are_accepted_on_every_method() -> None:
    assert parse_read("customers", [], CLIENT_HEADERS, CACHE).singular is False
    insert = parse_insert(
        "customers", [("columns", '"name"')], CLIENT_HEADERS, [{"name": "a"}], CACHE
    )
    assert insert.columns == ("name",)
    where = [("id", "eq.1"), ("select", "*")]
    parse_update("customers", where, CLIENT_HEADERS, {"vip": True}, CACHE)
    parse_delete("customers", where, CLIENT_HEADERS, CACHE)
    rpc = parse_rpc("add", [], {"a": 1, "b": 2}, CACHE, CLIENT_HEADERS)
    assert rpc.arguments == (("a", 1), ("b", 2))


@pytest.mark.parametrize(
    ("header", "call"),
    [
        ("Accept-Profile", lambda h: parse_read("customers", [], h, CACHE)),
        (
            "Content-Profile",
            lambda h: parse_insert("customers", [], h, {"name": "a"}, CACHE),
        ),
        (
            "Content-Profile",
            lambda h: parse_delete("customers", [("id", "eq.1")], h, CACHE),
        ),
        ("Content-Profile", lambda h: parse_rpc("add", [], {"a": 1}, CACHE, h)),
        (
            "Accept-Profile",
            lambda h: parse_rpc("add", [("a", "1")], None, CACHE, h, method="GET"),
        ),
    ],
)
def test_a_schema_other_than_the_exposed_one_is_406(
    header: str, call: Callable[[dict[str, str]], object]
) -> None:
    with pytest.raises(RequestError) as caught:
        call({header: "public"})
    assert caught.value.status == 406
    assert "'shop'" in str(caught.value)


def test_writes_may_ask_for_one_object() -> None:
    one = {"Accept": "application/vnd.pgrst.object+json"}
    where = [("id", "eq.1")]
    assert parse_insert("customers", [], one, {"name": "a"}, CACHE).singular
    assert parse_update("customers", where, one, {"vip": True}, CACHE).singular
    assert parse_delete("customers", where, one, CACHE).singular
    assert not parse_delete("customers", where, CLIENT_HEADERS, CACHE).singular


def test_single_object_takes_the_only_row_or_is_406() -> None:
    assert single_object('[{"id": 1}]') == '{"id": 1}'
    for body in ("[]", '[{"id": 1}, {"id": 2}]'):
        with pytest.raises(RequestError) as caught:
            single_object(body)
        assert caught.value.status == 406
