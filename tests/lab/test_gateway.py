"""The gateway against a real database on a lab host, over TLS both ways.

The setup (db1 hardened, the API app migrated, the gateway served from here
under uvicorn on loopback) lives in :mod:`._gateway`; these tests call it
with plain HTTP requests, as curl would. They run once per platform: db1 on
Debian 12 (PostgreSQL 15), then on Debian 13 (PostgreSQL 17).
"""

from __future__ import annotations

import json
import time

import httpx
import jwt
import pytest

from ._api import EVENTS, migrate
from ._gateway import SECRET, Gateway, token

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def gateway(served_gateway: Gateway) -> Gateway:
    """db1 on Debian 12, then on Debian 13; the lab is shared with the other
    module that calls the served gateway (see :mod:`._gateway`)."""
    return served_gateway


def test_a_token_reads_a_table_through_https(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get("/customers", params={"order": "id.asc"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]


def test_filters_select_order_and_limit(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get(
            "/orders",
            params={
                "select": "id,total",
                "total": "gt.8",
                "order": "total.desc",
                "limit": "1",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 11, "total": 20}]


def test_an_exact_count_with_a_filter_keeps_the_rows_and_counts_them(
    gateway: Gateway,
) -> None:
    params = {"select": "id", "customer_id": "eq.1", "order": "id", "limit": "1"}
    with gateway.client(token()) as client:
        counted = client.get(
            "/orders", params=params, headers={"Prefer": "count=exact"}
        )
        plain = client.get("/orders", params=params)
    assert counted.status_code == 200, counted.text
    assert counted.json() == plain.json() == [{"id": 10}]
    assert counted.headers["content-range"] == "0-0/2"


def test_embedding_along_a_foreign_key(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get(
            "/customers",
            params={"select": "name,orders(id)", "id": "eq.1"},
        )
    assert answer.status_code == 200, answer.text
    (ada,) = answer.json()
    assert ada["name"] == "Ada"
    assert sorted(order["id"] for order in ada["orders"]) == [10, 11]


def test_insert_update_delete_with_representation(gateway: Gateway) -> None:
    prefer = {"Prefer": "return=representation"}
    with gateway.client(token()) as client:
        created = client.post(
            "/customers", json={"id": 3, "name": "Edsger"}, headers=prefer
        )
        assert created.status_code == 201, created.text
        assert created.json() == [{"id": 3, "name": "Edsger"}]
        changed = client.patch(
            "/customers", params={"id": "eq.3"}, json={"name": "E. W."}, headers=prefer
        )
        assert changed.status_code == 200, changed.text
        assert changed.json() == [{"id": 3, "name": "E. W."}]
        removed = client.delete("/customers", params={"id": "eq.3"})
        assert removed.status_code in {200, 204}, removed.text


def test_rpc(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.post("/rpc/add", json={"a": 2, "b": 40})
    assert answer.status_code == 200, answer.text
    assert answer.json() == 42


def test_anonymous_may_read_but_not_write(gateway: Gateway) -> None:
    with gateway.client() as client:
        read = client.get("/customers")
        write = client.post("/customers", json={"id": 9, "name": "Mallory"})
    assert read.status_code == 200, read.text
    assert write.status_code in {401, 403}, write.text


@pytest.mark.parametrize(
    "bad_token",
    [
        jwt.encode(
            {"role": "web_user"}, "another-secret-of-at-least-32-bytes!!", "HS256"
        ),
        jwt.encode({"role": "web_user", "exp": 1}, SECRET, "HS256"),
        token(role="app_owner"),
        "not.a.token",
    ],
    ids=["forged", "expired", "role-not-granted", "malformed"],
)
def test_bad_tokens_are_refused(gateway: Gateway, bad_token: str) -> None:
    with gateway.client(bad_token) as client:
        answer = client.get("/customers")
    assert answer.status_code in {401, 403}, answer.text
    body = answer.json()
    assert set(body) >= {"code", "message"}
    assert bad_token not in answer.text


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/nope", {}, 404),
        ("/customers", {"select": "id,secret"}, 400),
        ("/customers", {"id": "zz.1"}, 400),
        ("/customers", {"id": "eq.1;DROP TABLE api.customers"}, 400),
        ("/customers", {"order": "name;--"}, 400),
        ("/customers", {"limit": "-1"}, 400),
        ("/customers", {"id": "is.true"}, 400),
        ("/customers", {"select": "\x00:id"}, 400),
    ],
)
def test_bad_requests_get_clear_json_errors(
    gateway: Gateway, path: str, params: dict[str, str], status: int
) -> None:
    with gateway.client(token()) as client:
        answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) >= {"code", "message"}
    assert "SELECT" not in answer.text
    with gateway.client(token()) as client:
        still = client.get("/customers")
    assert still.status_code == 200


def test_openapi_describes_what_the_caller_may_use(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        as_user = json.loads(client.get("/").text)
    with gateway.client() as client:
        anonymous = json.loads(client.get("/").text)
    assert "/customers" in as_user["paths"]
    assert "/rpc/add" in as_user["paths"]
    # web_anon may read the tables but not call functions: the map says so.
    assert "/customers" in anonymous["paths"]
    assert "/rpc/add" not in anonymous["paths"]


def test_a_deeply_nested_body_is_a_clear_400(gateway: Gateway) -> None:
    body = "[" * 1000 + "]" * 1000
    with gateway.client(token()) as client:
        answer = client.post(
            "/rpc/add", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "PGF400"


def test_a_notify_reloads_the_schema_at_once(gateway: Gateway) -> None:
    migrate(
        gateway.lab,
        "SET ROLE app_owner;\n"
        "CREATE TABLE api.late (id int PRIMARY KEY);\n"
        "INSERT INTO api.late VALUES (7);\n"
        "NOTIFY pgrst, 'reload schema';\n",
    )
    deadline = time.monotonic() + 10
    with gateway.client(token()) as client:
        answer = client.get("/late")
        while answer.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = client.get("/late")
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 7}]


def test_answers_for_a_caller_are_never_cached_for_others(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get("/customers")
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert "Authorization" in answer.headers["Vary"]


@pytest.fixture(scope="module")
def events(gateway: Gateway) -> Gateway:
    """The gateway once api.events and api.events_tagged are in its cache."""
    migrate(gateway.lab, EVENTS)
    deadline = time.monotonic() + 10
    with gateway.client(token()) as client:
        while client.get("/events").status_code == 404:
            assert time.monotonic() < deadline, "the schema did not reload"
            time.sleep(0.2)
    return gateway


def _skus(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(row["sku"] for row in answer.json())


@pytest.mark.parametrize(
    ("params", "skus"),
    [
        ({"tags": "cs.{pets,cats}"}, ["a"]),
        ({"tags": "not.ov.{dogs,birds}"}, ["a"]),
        ({"seats": "sl.[6,9)"}, ["a"]),
        ({"seats": "adj.[20,30)"}, ["b"]),
        ({"body": "fts(english).cats"}, ["a"]),
        ({"body": "wfts(simple).park"}, ["b"]),
        ({"title": "imatch.^d"}, ["b"]),
        ({"or": "(tags.cs.{dogs},body.plfts(english).fat cats)"}, ["a", "b"]),
    ],
)
def test_array_range_and_text_search_filters(
    events: Gateway, params: dict[str, str], skus: list[str]
) -> None:
    with events.client(token()) as client:
        answer = client.get("/events", params={"select": "sku", **params})
    assert _skus(answer) == skus


@pytest.mark.parametrize(
    "params", [{"body": "fts(klingon).cat"}, {"id": "sl.[1,2)"}, {"seats": "cs.x"}]
)
def test_filters_that_cannot_apply_are_400(
    events: Gateway, params: dict[str, str]
) -> None:
    with events.client(token()) as client:
        answer = client.get("/events", params=params)
    assert answer.status_code == 400, answer.text
    assert "klingon" not in answer.text


def test_rpc_get_for_a_stable_function_and_405_for_a_volatile_one(
    events: Gateway,
) -> None:
    with events.client(token()) as client:
        tagged = client.get(
            "/rpc/events_tagged",
            params={"tag": "pets", "select": "sku", "seats": "sr.[6,9)"},
        )
        volatile = client.get("/rpc/add", params={"a": "1", "b": "2"})
    assert _skus(tagged) == ["b"]
    assert volatile.status_code == 405, volatile.text
    assert "POST" in volatile.json()["message"]


def test_get_runs_read_only_even_when_a_stable_function_writes(
    events: Gateway,
) -> None:
    def quantities(client: httpx.Client) -> list[int]:
        answer = client.get("/events", params={"select": "qty", "order": "id"})
        return [row["qty"] for row in answer.json()]

    with events.client(token()) as client:
        before = quantities(client)
        sneaky = client.get("/rpc/events_peek")
        after_get = quantities(client)
        posted = client.post("/rpc/events_peek", json={})
        after_post = quantities(client)
    assert sneaky.status_code == 405, sneaky.text
    assert "POST" in sneaky.json()["message"]
    assert after_get == before
    assert posted.status_code == 200, posted.text
    assert after_post == [q + 1 if q is not None else None for q in before]


def test_upsert_merges_or_ignores_and_missing_default(events: Gateway) -> None:
    rep = "return=representation"
    with events.client(token()) as client:
        merged = client.post(
            "/events",
            params={"on_conflict": "sku"},
            json=[{"sku": "a", "title": "Kittens"}, {"sku": "c", "title": "Birds"}],
            headers={"Prefer": f"{rep},resolution=merge-duplicates"},
        )
        ignored = client.post(
            "/events",
            params={"on_conflict": "sku"},
            json={"sku": "a", "title": "Ignored"},
            headers={"Prefer": f"{rep},resolution=ignore-duplicates"},
        )
        defaults = client.post(
            "/events",
            json=[{"sku": "d", "qty": None}, {"sku": "e"}],
            headers={"Prefer": f"{rep},missing=default"},
        )
        nulls = client.post(
            "/events",
            json=[{"sku": "f", "qty": 3}, {"sku": "g"}],
            headers={"Prefer": rep},
        )
    assert merged.status_code == 201, merged.text
    rows = {row["sku"]: row for row in merged.json()}
    assert (rows["a"]["id"], rows["a"]["title"], rows["c"]["title"]) == (
        1,
        "Kittens",
        "Birds",
    )
    assert (ignored.status_code, ignored.json()) == (201, [])
    assert defaults.status_code == 201, defaults.text
    assert [(r["sku"], r["title"], r["qty"]) for r in defaults.json()] == [
        ("d", "untitled", None),
        ("e", "untitled", 1),
    ]
    assert [(r["sku"], r["qty"]) for r in nulls.json()] == [("f", 3), ("g", None)]


def test_a_one_object_write_is_undone_unless_it_touches_one_row(
    events: Gateway,
) -> None:
    one = {"Accept": "application/vnd.pgrst.object+json"}
    rep = one | {"Prefer": "return=representation"}
    with events.client(token()) as client:
        many = client.patch(
            "/events", params={"tags": "cs.{pets}"}, json={"qty": 50}, headers=one
        )
        none = client.delete("/events", params={"sku": "eq.nope"}, headers=one)
        after = client.get("/events", params={"select": "sku,qty", "qty": "eq.50"})
        changed = client.patch(
            "/events", params={"sku": "eq.b"}, json={"qty": 7}, headers=rep
        )
        created = client.post("/events", json={"sku": "h"}, headers=rep)
        twice = client.post("/events", json=[{"sku": "i"}, {"sku": "j"}], headers=one)
        kept = client.get("/events", params={"select": "sku", "sku": "in.(i,j)"})
    assert many.status_code == 406, many.text
    assert none.status_code == 406, none.text
    assert _skus(after) == []
    assert changed.status_code == 200, changed.text
    assert (changed.json()["sku"], changed.json()["qty"]) == ("b", 7)
    assert (created.status_code, created.json()["title"]) == (201, "untitled")
    assert twice.status_code == 406, twice.text
    assert "2 rows" in twice.json()["message"]
    assert _skus(kept) == []


def test_failed_requests_leave_their_pooled_connections_clean(
    events: Gateway,
) -> None:
    """Each connection is reused after requests that failed in the database
    (a refused write, a write inside a GET, a value that is not an integer,
    twice as many of each as the pool holds): the requests after them get
    their own role and nothing of the failed transactions."""
    with events.client(token()) as user, events.client() as anonymous:
        refusals, in_get, bad_values = set(), set(), set()
        for _ in range(20):
            refusals.add(anonymous.post("/events", json={"sku": "x"}).status_code)
            in_get.add(user.get("/rpc/events_peek").status_code)
            bad_values.add(user.get("/events", params={"qty": "eq.many"}).status_code)
        reads = {user.get("/events", params={"select": "sku"}).status_code}
        reads |= {anonymous.get("/customers").status_code for _ in range(20)}
        refused = anonymous.post("/events", json={"sku": "y"}).status_code
        written = user.post("/events", json={"sku": "after-failures"})
        removed = user.delete("/events", params={"sku": "eq.after-failures"})
    assert len(refusals) == 1
    assert refusals <= {401, 403}
    assert in_get == {405}
    assert bad_values == {400}
    assert reads == {200}
    assert refused in refusals
    assert written.status_code == 201, written.text
    assert removed.status_code in {200, 204}, removed.text
