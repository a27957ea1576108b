"""Deadlines for slow clients, added to uvicorn's HTTP protocol.

uvicorn closes a keep-alive connection that stays idle after a response, but
sets no deadline on a connection that never sends a request, nor on a request
that arrives a byte at a time: a few hundred such connections (slowloris)
would hold every connection slot the server has. The protocol returned by
:func:`guarded_protocol` adds both:

- a new connection must start a request within the keep-alive timeout;
- once a request has started, all of it (request line, headers and body)
  must arrive within ``request_timeout`` seconds, or the client gets
  ``408 Request Timeout`` (when no answer has begun) and the connection is
  closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import GatewayError

__all__ = ["guarded_protocol"]


def _timed_out() -> bytes:
    error = GatewayError("the request took too long to send", status=408)
    body = json.dumps(error.body())
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        "connection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


TIMED_OUT = _timed_out()


class _GuardedProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The same timer uvicorn arms after each response: the first byte of
        # a request cancels it, silence closes the connection.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._cancel_deadline()
        self._request_deadline = self.loop.call_later(
            self.request_timeout, self._request_too_slow
        )

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _request_too_slow(self) -> None:
        self._request_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(TIMED_OUT)
        if self.cycle is not None:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


def guarded_protocol(request_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the deadlines described above."""
    return type(
        "GuardedHttpToolsProtocol",
        (_GuardedProtocol,),
        {"request_timeout": float(request_timeout)},
    )
