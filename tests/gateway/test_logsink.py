"""Log lines are written in batches inside the event loop, at once outside it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from pgfortress_gateway.audit import AUDIT_LOGGER, log_request
from pgfortress_gateway.logsink import BatchedStreamHandler, configure


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


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, and logging's switches, put back as they were after
    the test (``configure`` changes both)."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    switches = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    source = logging._srcfile
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logging.logThreads, logging.logProcesses, logging.logMultiprocessing = switches
    logging._srcfile = source


def _no_records(*args: object, **kwargs: object) -> logging.LogRecord:
    raise AssertionError("a log record was built")


def test_an_audit_line_skips_the_record_and_reads_the_same(
    root: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, through_record = io.StringIO(), io.StringIO()
    with monkeypatch.context() as patched:
        patched.setattr(logging.Logger, "makeRecord", _no_records)
        configure(direct)
        log_request("alice", "web_user", "GET", "/orders?id=eq.1", 200, 1.0, "::1")
    # A filter on the handler must see every record: the record path again.
    configure(through_record).addFilter(lambda record: True)
    log_request("alice", "web_user", "GET", "/orders?id=eq.1", 200, 1.0, "::1")

    name, level, line = direct.getvalue().split(" ", 2)
    assert (name, level) == ("pgfortress_gateway.audit", "INFO")
    assert json.loads(line)["path"] == "/orders"
    # Equal but for the time stamp, the last field.
    assert (
        direct.getvalue().rsplit('"ts":', 1)[0]
        == (through_record.getvalue().rsplit('"ts":', 1)[0])
    )


def _handler_filtered(handler: BatchedStreamHandler) -> None:
    handler.addFilter(lambda record: True)


def _logger_filtered(handler: BatchedStreamHandler) -> None:
    AUDIT_LOGGER.addFilter(lambda record: True)


def _another_handler(handler: BatchedStreamHandler) -> None:
    logging.getLogger("pgfortress_gateway").addHandler(logging.NullHandler())


def _other_format(handler: BatchedStreamHandler) -> None:
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))


def _warnings_only(handler: BatchedStreamHandler) -> None:
    handler.setLevel(logging.WARNING)


def _not_propagated(handler: BatchedStreamHandler) -> None:
    AUDIT_LOGGER.propagate = False


@pytest.mark.parametrize(
    "change",
    [
        _handler_filtered,
        _logger_filtered,
        _another_handler,
        _other_format,
        _warnings_only,
        _not_propagated,
    ],
)
def test_anything_else_that_would_see_the_record_keeps_the_record(
    root: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[BatchedStreamHandler], None],
) -> None:
    handler = configure(io.StringIO())
    assert BatchedStreamHandler.sole_handler(AUDIT_LOGGER, logging.INFO) is handler
    gateway = logging.getLogger("pgfortress_gateway")
    monkeypatch.setattr(gateway, "handlers", gateway.handlers[:])
    monkeypatch.setattr(AUDIT_LOGGER, "filters", AUDIT_LOGGER.filters[:])
    monkeypatch.setattr(AUDIT_LOGGER, "propagate", AUDIT_LOGGER.propagate)

    change(handler)

    assert BatchedStreamHandler.sole_handler(AUDIT_LOGGER, logging.INFO) is None
