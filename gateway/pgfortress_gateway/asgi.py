"""The public API as a plain ASGI application around :meth:`Gateway.handle`.

Every request goes to the one handler, whatever its path and method, so the
gateway needs none of Starlette's routing or middleware: the handler turns
every error into a JSON answer itself. This saves their CPU on each request
(docs/benchmarks.md); Starlette's request and response objects are kept.

The lifespan protocol opens the gateway (pool, memberships, schema) at start
and closes it at shutdown, as Starlette's lifespan does: a failure to start
is reported to the server with its traceback and raised again, and uvicorn
then exits with its "could not start" code.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from .app import Gateway

__all__ = ["ApiApplication"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ApiApplication:
    """ASGI callable: HTTP to the gateway, lifespan to its start and stop."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        # As on a Starlette application: tools and tests reach the gateway here.
        self.state = SimpleNamespace(gateway=gateway)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            request = Request(scope, receive)
            response = await self.gateway.handle(request)
            await response(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        started = False
        refresher: asyncio.Task[None] | None = None
        try:
            await self.gateway.start()
            refresher = asyncio.create_task(self.gateway.keep_schema_fresh())
            await send({"type": "lifespan.startup.complete"})
            started = True
            await receive()  # lifespan.shutdown
        except BaseException:
            failed = "shutdown" if started else "startup"
            message = traceback.format_exc()
            await send({"type": f"lifespan.{failed}.failed", "message": message})
            raise
        finally:
            if refresher is not None:
                refresher.cancel()
            await self.gateway.database.close()
        await send({"type": "lifespan.shutdown.complete"})
