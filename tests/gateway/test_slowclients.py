"""Slow clients (slowloris) are cut off: a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from pgfortress_gateway.slowclients import guarded_protocol

REQUEST_TIMEOUT = 0.5
IDLE_TIMEOUT = 1

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the length of the body it read."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving() -> AsyncIterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        echo_length,
        http=guarded_protocol(REQUEST_TIMEOUT),
        timeout_keep_alive=IDLE_TIMEOUT,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
        listener.close()


async def _read_all(reader: asyncio.StreamReader, limit: float = 5) -> bytes:
    return await asyncio.wait_for(reader.read(), limit)


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What arrived before the server closed, even if our own writes then failed."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionError:
        pass
    return received


def test_a_prompt_request_is_answered() -> None:
    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n"
                b"connection: close\r\n\r\nabc"
            )
            answer = await _read_all(reader)
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n\r\n3")

    asyncio.run(scenario())


def test_headers_that_never_finish_get_408_and_the_connection_closes() -> None:
    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n")
            started = time.monotonic()
            answer = await _read_all(reader)
            waited = time.monotonic() - started
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert answer.endswith(
            b'{"code": "PGF408", "message": "the request took too long to send"}'
        )
        assert REQUEST_TIMEOUT <= waited < REQUEST_TIMEOUT + 2

    asyncio.run(scenario())


def test_a_request_dripped_a_byte_at_a_time_is_cut_off() -> None:
    request = b"GET / HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 200 + b"\r\n\r\n"

    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            reading = asyncio.create_task(_read_until_closed(reader))
            for byte in request:
                if reader.at_eof() or writer.is_closing():
                    break
                try:
                    writer.write(bytes([byte]))
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.02)
            answer = await asyncio.wait_for(reading, 5)
            waited = time.monotonic() - started
            writer.close()
        # 200 bytes at 20 ms would take 4 s; the deadline ends it far sooner.
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert waited < REQUEST_TIMEOUT + 2

    asyncio.run(scenario())


def test_a_body_that_stops_coming_is_cut_off() -> None:
    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nab")
            answer = await _read_all(reader)
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")

    asyncio.run(scenario())


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() -> None:
    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.monotonic()
            answer = await _read_all(reader)
            waited = time.monotonic() - started
            writer.close()
        assert answer == b""
        assert IDLE_TIMEOUT <= waited < IDLE_TIMEOUT + 2

    asyncio.run(scenario())


def test_keep_alive_requests_each_get_their_own_deadline() -> None:
    one = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"

    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):
                # Each request is prompt, though together they outlast one
                # deadline: the deadline is per request, not per connection.
                writer.write(one)
                status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n0"), 5)
                assert status.startswith(b"HTTP/1.1 200 ")
                await asyncio.sleep(REQUEST_TIMEOUT * 0.8)
            writer.close()

    asyncio.run(scenario())


def test_too_many_headers_get_431_before_the_application_sees_them() -> None:
    many = b"".join(b"x-%d: a\r\n" % n for n in range(5000))

    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            reading = asyncio.create_task(_read_until_closed(reader))
            with contextlib.suppress(ConnectionError):
                writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
                await writer.drain()
            answer = await asyncio.wait_for(reading, 5)
            writer.close()
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
        assert b'"code": "PGF431"' in answer

    asyncio.run(scenario())


def test_a_header_value_without_end_gets_431_early() -> None:
    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            reading = asyncio.create_task(_read_until_closed(reader))
            sent = 0
            with contextlib.suppress(ConnectionError):
                writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nx-big: ")
                while sent < 4 * 2**20 and not reading.done():
                    writer.write(b"a" * 65536)
                    await writer.drain()
                    sent += 65536
            answer = await asyncio.wait_for(reading, 5)
            writer.close()
        # Refused at MAX_HEADER_BYTES, not after the 4 MiB (nor at the deadline).
        assert answer.startswith(b"HTTP/1.1 431 ")

    asyncio.run(scenario())


def test_a_request_with_a_normal_number_of_headers_is_answered() -> None:
    some = b"".join(b"x-%d: a\r\n" % n for n in range(60))

    async def scenario() -> None:
        async with serving() as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + some + b"\r\n"
            )
            answer = await _read_all(reader)
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")

    asyncio.run(scenario())
