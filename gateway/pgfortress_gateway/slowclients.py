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
  closed;
- the request line and headers may take at most ``MAX_HEADER_BYTES`` and
  ``MAX_HEADER_LINES`` lines, or the client gets ``431`` and the connection is
  closed: the parser builds every header value by appending, and the
  application copies the headers, both at a cost that grows faster than
  their size.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import GatewayError

__all__ = ["guarded_protocol"]


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps(GatewayError(message, status=status).body())
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        "connection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return (head + body).encode()


TIMED_OUT = _refusal(408, "Request Timeout", "the request took too long to send")
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_LINES = 100
HEADERS_TOO_LARGE = _refusal(
    431,
    "Request Header Fields Too Large",
    f"send at most {MAX_HEADER_LINES} header lines and {MAX_HEADER_BYTES} bytes "
    "of request line and headers",
)


class _GuardedProtocol(HttpToolsProtocol):
    request_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_deadline: asyncio.TimerHandle | None = None
        # Bytes and lines of the request line and headers seen so far: the
        # parser keeps every header, and the application copies them, so
        # their number and size are bounded before either happens.
        self._in_head = True
        self._head_bytes = 0
        self._head_lines = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            self._head_lines += data.count(b"\n")
            if (
                self._head_bytes > MAX_HEADER_BYTES
                or self._head_lines > MAX_HEADER_LINES + 2
            ):
                self._refuse(HEADERS_TOO_LARGE)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

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
        self._in_head, self._head_bytes, self._head_lines = True, 0, 0
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
        self._refuse(TIMED_OUT)

    def _refuse(self, answer: bytes) -> None:
        """Answer (unless a response has begun) and close the connection."""
        self._cancel_deadline()
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(answer)
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
