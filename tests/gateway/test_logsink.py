"""Log lines are written in batches inside the event loop, at once outside it."""

from __future__ import annotations

import asyncio
import io
import logging

from pgfortress_gateway.logsink import BatchedStreamHandler


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _logger(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"test.logsink.{id(handler)}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return logger


def test_lines_in_the_event_loop_are_written_together_after_the_delay() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, max_delay=0.01)
    logger = _logger(handler)

    async def scenario() -> None:
        for n in range(10):
            logger.info("line %d", n)
        assert stream.getvalue() == ""
        await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert stream.getvalue() == "".join(f"line {n}\n" for n in range(10))
    assert stream.writes == 1


def test_a_full_batch_is_written_at_once() -> None:
    stream = CountingStream()
    logger = _logger(BatchedStreamHandler(stream, max_lines=4, max_delay=60))

    async def scenario() -> None:
        for n in range(9):
            logger.info("line %d", n)

    asyncio.run(scenario())
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(8)]
    assert stream.writes == 2


def test_warnings_are_written_at_once_with_the_lines_before_them() -> None:
    stream = CountingStream()
    logger = _logger(BatchedStreamHandler(stream, max_delay=60))

    async def scenario() -> None:
        logger.info("request")
        logger.warning("database unreachable")
        assert stream.getvalue() == "request\ndatabase unreachable\n"

    asyncio.run(scenario())


def test_outside_an_event_loop_each_line_is_written_at_once() -> None:
    stream = CountingStream()
    logger = _logger(BatchedStreamHandler(stream))
    logger.info("starting")
    assert stream.getvalue() == "starting\n"


def test_flush_writes_what_is_pending_at_shutdown() -> None:
    stream = CountingStream()
    handler = BatchedStreamHandler(stream, max_delay=60)
    logger = _logger(handler)

    async def scenario() -> None:
        logger.info("last request")

    asyncio.run(scenario())
    assert stream.getvalue() == ""
    handler.flush()
    assert stream.getvalue() == "last request\n"
