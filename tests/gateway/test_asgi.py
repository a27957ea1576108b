"""The plain ASGI entry: every request to the handler, lifespan to start/stop."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
from pgfortress_gateway.asgi import ApiApplication
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class StandIn:
    """What ApiApplication uses of a Gateway; records what happened."""

    def __init__(self, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.events: list[str] = []
        self.database = self

    async def start(self) -> None:
        self.events.append("start")
        if self.fail_start:
            raise SystemExit("the authenticator cannot switch to: web_user")

    async def keep_schema_fresh(self) -> None:
        self.events.append("refreshing")
        await asyncio.sleep(3600)

    async def close(self) -> None:
        self.events.append("closed")

    async def handle(self, request: Request) -> Response:
        return JSONResponse({"method": request.method, "path": request.url.path})


def _lifespan(
    app: ApiApplication, sent: list[MutableMapping[str, Any]]
) -> list[MutableMapping[str, Any]]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> MutableMapping[str, Any]:
        await asyncio.sleep(0)
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    return sent


def test_the_lifespan_starts_refreshes_and_closes_the_gateway() -> None:
    gateway = StandIn()
    sent = _lifespan(ApiApplication(gateway), [])  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert gateway.events == ["start", "refreshing", "closed"]


def test_a_gateway_that_cannot_start_reports_why_and_raises() -> None:
    gateway = StandIn(fail_start=True)
    sent: list[MutableMapping[str, Any]] = []
    with pytest.raises(SystemExit):
        _lifespan(ApiApplication(gateway), sent)  # type: ignore[arg-type]
    assert gateway.events == ["start", "closed"]
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "cannot switch to: web_user" in sent[0]["message"]


@pytest.mark.parametrize("method", ["GET", "CONNECT", "PROPFIND"])
def test_every_method_and_path_reaches_the_handler(method: str) -> None:
    app = ApiApplication(StandIn())  # type: ignore[arg-type]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/a/b",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == f'{{"method":"{method}","path":"/a/b"}}'.encode()
