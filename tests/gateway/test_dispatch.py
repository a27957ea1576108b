"""The routes of ``Gateway._dispatch``, with a stand-in database that records
each statement and answers a prepared row or error."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from pgfortress_gateway.app import ALL_METHODS, Gateway
from pgfortress_gateway.config import config_from_mapping
from pgfortress_gateway.database import Query
from pgfortress_gateway.errors import RequestError
from starlette.applications import Starlette
from starlette.routing import Route

from .test_grammar import make_cache


class Recorder:
    """Answers ``run_as`` with ``answer`` (a row, or an exception to raise)."""

    def __init__(self) -> None:
        self.answer: tuple[Any, ...] | BaseException | None = None
        self.queries: list[Query] = []
        self.read_only: list[bool] = []

    async def run_as(
        self,
        role: str,
        claims: str,
        query: Query,
        timeout: int | None = None,
        *,
        read_only: bool = False,
    ) -> tuple[Any, ...] | None:
        self.queries.append(query)
        self.read_only.append(read_only)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    @property
    def text(self) -> str:
        return self.queries[-1].sql.as_string(None)


@pytest.fixture
def database() -> Recorder:
    return Recorder()


class Client:
    """Plain synchronous calls into the ASGI application."""

    def __init__(self, app: Starlette, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="https://gateway.test"
            ) as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def client(tmp_path: Path, database: Recorder) -> Client:
    secrets = {"password": "correct horse", "secret": "0123456789abcdef" * 2}
    for name, text in secrets.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    config = config_from_mapping(
        {
            "database": {
                "host": "db1.lab.example",
                "dbname": "app",
                "user": "authenticator",
                "password_file": str(tmp_path / "password"),
                "sslrootcert": str(tmp_path / "ca.crt"),
            },
            "api": {"schema": "shop", "anonymous_role": "web_anon"},
            "jwt": {"secret_file": str(tmp_path / "secret")},
        }
    )
    gateway = Gateway(config, database)  # type: ignore[arg-type]
    gateway.cache = make_cache()
    route = Route("/{path:path}", gateway.handle, methods=ALL_METHODS)
    return Client(Starlette(routes=[route]), gateway)


def test_a_schema_reload_drops_the_statements_composed_before_it(
    client: Client, database: Recorder
) -> None:
    database.answer = ("[]", None, 0)
    client.get("/customers?id=eq.1")
    assert '"id" = %s::integer' in database.text
    reloaded = make_cache()
    id_column = reloaded.relations["customers"].columns["id"]
    reloaded.relations["customers"].columns["id"] = replace(id_column, type="bigint")
    client.gateway.cache = reloaded
    client.get("/customers?id=eq.2")
    assert '"id" = %s::bigint' in database.text
    assert database.queries[-1].params == ("2", 1000)


def test_rpc_get_calls_a_stable_function_with_query_arguments(
    client: Client, database: Recorder
) -> None:
    database.answer = ('[{"id": 11}]', None)
    answer = client.get("/rpc/big_orders?min_total=8&select=id&status=eq.new")
    assert (answer.status_code, answer.json()) == (200, [{"id": 11}])
    assert '"shop"."big_orders"("min_total" := %s::numeric)' in database.text
    assert database.queries[-1].params == ("8", "new", 1000)


def test_reads_and_function_gets_run_read_only_and_writes_do_not(
    client: Client, database: Recorder
) -> None:
    database.answer = ('[{"id": 11}]', None, 1)
    client.get("/rpc/big_orders?min_total=8")
    client.head("/rpc/big_orders?min_total=8")
    client.get("/orders?id=eq.1")
    database.answer = ("42", None)
    client.post("/rpc/add", json={"a": 2, "b": 40})
    database.answer = (None, None)
    client.post("/orders", json={"id": 1}, headers={"Prefer": "return=minimal"})
    assert database.read_only == [True, True, True, False, False]


def test_rpc_head_answers_no_body(client: Client, database: Recorder) -> None:
    database.answer = ("[1]", None)
    answer = client.head("/rpc/lookup?meta={}")
    assert (answer.status_code, answer.content) == (200, b"")


def test_rpc_one_object_is_taken_from_the_rows(
    client: Client, database: Recorder
) -> None:
    database.answer = ('[{"id": 11}]', None)
    one = {"Accept": "application/vnd.pgrst.object+json"}
    answer = client.get("/rpc/big_orders", headers=one)
    assert (answer.status_code, answer.json()) == (200, {"id": 11})
    database.answer = ("[]", None)
    assert client.get("/rpc/big_orders", headers=one).status_code == 406


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/rpc/add?a=1&b=2", "function 'add' is volatile: call it with POST"),
        ("HEAD", "/rpc/touch", None),
        ("DELETE", "/rpc/add", "call a function with GET or POST"),
        ("PATCH", "/rpc/add", "call a function with GET or POST"),
    ],
)
def test_rpc_volatile_gets_and_other_methods_are_405(
    client: Client, database: Recorder, method: str, path: str, message: str | None
) -> None:
    answer = client.request(method, path, json={} if method == "PATCH" else None)
    assert answer.status_code == 405
    if message is not None:
        assert answer.json() == {"code": "PGF405", "message": message}
    assert database.queries == []


def test_rpc_post_still_takes_a_json_body(client: Client, database: Recorder) -> None:
    database.answer = ("42", None)
    answer = client.post("/rpc/add", json={"a": 2, "b": 40})
    assert (answer.status_code, answer.json()) == (200, 42)
    assert database.queries[-1].params == ("2", "40")


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.UndefinedObject('text search configuration "klingon"'),
        RequestError("mapped elsewhere"),
    ],
)
def test_an_unknown_text_search_configuration_is_a_400(
    client: Client, database: Recorder, error: Exception
) -> None:
    cause = psycopg.errors.UndefinedObject('text search configuration "klingon"')
    if isinstance(error, RequestError):
        error.__cause__ = cause
    database.answer = error
    answer = client.get("/events?body=fts(klingon).x")
    assert answer.status_code == 400
    assert "klingon" not in answer.text


ONE = {"Accept": "application/vnd.pgrst.object+json"}


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("POST", "/customers", 201),
        ("PATCH", "/customers?id=eq.1", 200),
        ("DELETE", "/customers?id=eq.1", 200),
    ],
)
def test_a_one_object_write_answers_its_row_as_an_object(
    client: Client, database: Recorder, method: str, url: str, status: int
) -> None:
    database.answer = ('[{"id": 1, "name": "Ada"}]', 1)
    headers = ONE | {"Prefer": "return=representation"}
    body = None if method == "DELETE" else {"name": "Ada"}
    answer = client.request(method, url, headers=headers, json=body)
    assert (answer.status_code, answer.json()) == (status, {"id": 1, "name": "Ada"})
    assert "pgf-single-object:" in database.text


def test_a_one_object_write_without_representation_answers_no_body(
    client: Client, database: Recorder
) -> None:
    database.answer = (None, 1)
    answer = client.post("/customers", headers=ONE, json={"name": "Ada"})
    assert (answer.status_code, answer.content) == (201, b"")
    assert "RETURNING 1" in database.text


def test_a_one_object_write_that_touched_other_rows_is_406(
    client: Client, database: Recorder
) -> None:
    # What database.py raises for the failed check: the cast error, mapped
    # to a 400 with the server's error as its cause.
    failed = RequestError("a value is not valid for its column")
    failed.__cause__ = psycopg.errors.InvalidTextRepresentation(
        'invalid input syntax for type bigint: "pgf-single-object:3"'
    )
    database.answer = failed
    answer = client.request(
        "PATCH", "/customers?vip=is.true", headers=ONE, json={"vip": False}
    )
    assert answer.status_code == 406
    assert answer.json() == {
        "code": "PGF406",
        "message": "a single JSON object was asked for, but 3 rows matched; "
        "nothing was changed",
    }


def test_other_bad_values_stay_400(client: Client, database: Recorder) -> None:
    failed = RequestError("a value is not valid for its column")
    failed.__cause__ = psycopg.errors.InvalidTextRepresentation('integer: "x"')
    database.answer = failed
    answer = client.request(
        "PATCH", "/customers?id=eq.x", headers=ONE, json={"vip": False}
    )
    assert (answer.status_code, answer.json()["message"]) == (
        400,
        "a value is not valid for its column",
    )
    assert database.queries


def test_a_refused_preflight_carries_no_allow_origin(client: Client) -> None:
    answer = client.request(
        "OPTIONS",
        "/customers",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "GET",
        },
    )
    assert answer.status_code == 403
    assert answer.json()["code"] == "PGF403"
    assert "access-control-allow-origin" not in answer.headers
    assert "Origin" in answer.headers["vary"]


@pytest.mark.parametrize("method", ["PUT", "TRACE"])
def test_methods_the_gateway_does_not_serve_get_a_json_405(
    client: Client, method: str
) -> None:
    answer = client.request(method, "/customers")
    assert answer.status_code == 405
    assert answer.json()["code"] == "PGF405"


def test_a_function_called_without_a_body_needs_no_content_type(
    client: Client, database: Recorder
) -> None:
    database.answer = ("null", None)
    answer = client.post("/rpc/touch")
    assert answer.status_code == 200, answer.text
    assert '"shop"."touch"()' in database.text
    refused = client.post("/rpc/touch", content=b"{}")
    assert refused.status_code == 415


def test_an_insert_without_a_body_is_a_400(client: Client) -> None:
    answer = client.post("/orders")
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "PGF400"


def test_answers_keep_their_header_order_and_private_answers_say_so(
    client: Client, database: Recorder
) -> None:
    # The handler adds its headers to the raw list itself (no MutableHeaders);
    # what a client receives, in order, must stay the same.
    database.answer = ('[{"id": 1}]', None, 1)
    claims = {"role": "web_anon", "sub": "alice", "exp": time.time() + 60}
    token = jwt.encode(claims, "0123456789abcdef" * 2)
    signed = client.get(
        "/customers?id=eq.1",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", "Bearer x")],
    )
    anonymous = client.get("/customers?id=eq.1")

    assert signed.status_code == anonymous.status_code == 200, signed.text
    assert [name for name, _ in signed.headers.multi_items()] == [
        "content-range",
        "content-length",
        "content-type",
        "vary",
        "cache-control",
    ]
    assert signed.headers["vary"] == "Origin, Authorization"
    assert signed.headers["cache-control"] == "private, no-store"
    assert anonymous.headers["vary"] == "Origin"
    assert "cache-control" not in anonymous.headers


def test_one_caller_holds_at_most_half_the_pool_and_gives_it_back(
    client: Client, database: Recorder
) -> None:
    release = asyncio.Event()

    async def slow_run_as(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        await release.wait()
        return ("[]", None, 0)

    database.run_as = slow_run_as  # type: ignore[method-assign]
    claims = {"role": "web_anon", "sub": "alice", "exp": time.time() + 60}
    token = jwt.encode(claims, "0123456789abcdef" * 2)
    half = client.gateway._per_caller

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://gateway.test"
        ) as http:

            async def one() -> int:
                answer = await http.get(
                    "/customers", headers={"Authorization": f"Bearer {token}"}
                )
                return answer.status_code

            waiting = [asyncio.create_task(one()) for _ in range(half)]
            await asyncio.sleep(0.05)
            refused = await one()
            release.set()
            return [refused, *await asyncio.gather(*waiting)]

    assert asyncio.run(scenario()) == [429] + [200] * half
    assert client.gateway._busy == {}
