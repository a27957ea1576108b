"""Requests pipelined on a lane, on a stand-in libpq connection.

The stand-in answers each command with the next status the test gives and
makes the lane's socket readable (a socket pair) when answers are ready. What
is checked: several requests queue on one connection and are answered in
order, one request's failure or cancellation leaves the next one untouched,
Parse goes once per text, and a lost connection fails everything waiting and
closes the lane. The real exchange with PostgreSQL is proved by the lab tests
(tests/lab/test_gateway.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from typing import Any

import psycopg
import pytest
from pgfortress_gateway import _lanes, _pipeline
from psycopg import pq
from psycopg.adapt import Transformer

from ._libpq import ABORTED, FATAL, OK, READ, SETUP, SYNC, Result, Sender


class PGconn(Sender):
    """Records what is queued; hands out the results the test releases."""

    def __init__(self) -> None:
        super().__init__()
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.ready: deque[Result | None] = deque()
        self.pipeline_status = pq.PipelineStatus.OFF
        self.status = pq.ConnStatus.OK
        self.broken: psycopg.Error | None = None

    @property
    def socket(self) -> int:
        return self.ours.fileno()

    def enter_pipeline_mode(self) -> None:
        self.pipeline_status = pq.PipelineStatus.ON

    def exit_pipeline_mode(self) -> None:
        self.pipeline_status = pq.PipelineStatus.OFF

    def flush(self) -> int:
        return 0

    def consume_input(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.ours.recv(4096)
        if self.broken is not None:
            raise self.broken

    def is_busy(self) -> bool:
        return not self.ready

    def get_result(self) -> Result | None:
        return self.ready.popleft()

    def finish(self) -> None:
        self.status = pq.ConnStatus.BAD

    def answer(self, *statuses: pq.ExecStatus | Result) -> None:
        """One request's answer: each command's result, then its Sync."""
        for status in statuses:
            self.ready.append(status if isinstance(status, Result) else Result(status))
            self.ready.append(None)
        self.ready.append(Result(SYNC))
        self.theirs.send(b"!")

    def lose(self) -> None:
        self.broken = psycopg.OperationalError("server closed the connection")
        self.theirs.send(b"!")


class Connection:
    def __init__(self) -> None:
        self.pgconn = PGconn()


@pytest.fixture(autouse=True)
def stand_in_transformer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pipeline, "Transformer", lambda conn: Transformer())


def on_lane(test: Any) -> Any:
    """Run ``test(lane, pgconn, closed)`` in an event loop."""

    async def main() -> Any:
        closed: list[_lanes.Lane] = []
        conn = Connection()
        lane = _lanes.Lane(conn, closed.append)  # type: ignore[arg-type]
        try:
            return await test(lane, conn.pgconn, closed)
        finally:
            lane.close()
            conn.pgconn.ours.close()
            conn.pgconn.theirs.close()

    return asyncio.run(main())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_two_requests_share_one_connection_and_are_answered_in_order() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        first = asyncio.ensure_future(lane.run([SETUP, READ]))
        second = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        assert lane.load == 2
        pg.answer(OK, OK, OK, OK)
        pg.answer(OK, OK)
        assert await first is None
        assert await second is None
        assert lane.load == 0

        kinds = [entry[0] for entry in pg.sent]
        # The second request does not wait for the first one's Parse: texts
        # still being parsed go unnamed.
        first_sent = ["parse", "run", "parse", "run", "sync"]
        assert kinds == [*first_sent, "run unnamed", "run unnamed", "sync"]
        pg.sent.clear()
        third = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        pg.answer(OK, OK)
        await third
        assert [entry[0] for entry in pg.sent] == ["run", "run", "sync"]
        assert pg.pipeline_status == pq.PipelineStatus.ON
        assert not closed

    on_lane(test)


def test_a_failed_request_leaves_the_next_one_on_the_lane_untouched() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        first = asyncio.ensure_future(lane.run([SETUP, READ]))
        second = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        pg.answer(OK, Result(FATAL, b"42501"), ABORTED, ABORTED)
        pg.answer(OK, OK)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await first
        assert await second is None
        assert not lane.closed

    on_lane(test)


def test_a_cancelled_request_is_read_and_dropped() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        gone = asyncio.ensure_future(lane.run([SETUP, READ]))
        waiting = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        gone.cancel()
        pg.answer(OK, OK, OK, OK)
        pg.answer(OK, OK)
        assert await waiting is None
        assert gone.cancelled()
        assert lane.load == 0
        assert not lane.closed

    on_lane(test)


def test_a_statement_invalidated_by_a_schema_change_is_prepared_again() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        first = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        pg.answer(OK, OK, OK, OK)
        await first
        stale = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        pg.answer(OK, Result(FATAL, b"0A000"))
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            await stale
        pg.sent.clear()
        again = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        pg.answer(OK, OK, OK)
        await again
        assert [entry[0] for entry in pg.sent] == ["run", "parse", "run", "sync"]

    on_lane(test)


def test_a_lost_connection_fails_every_waiting_request_and_closes_the_lane() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        waiting = [asyncio.ensure_future(lane.run([SETUP, READ])) for _ in range(3)]
        await settle()
        pg.lose()
        for request in waiting:
            with pytest.raises(psycopg.OperationalError):
                await request
        assert lane.closed
        assert closed == [lane]
        assert pg.status == pq.ConnStatus.BAD
        with pytest.raises(psycopg.OperationalError):
            await lane.run([SETUP, READ])

    on_lane(test)


def test_an_idle_lane_gives_its_connection_back_intact() -> None:
    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        lane.close()
        assert closed == [lane]
        assert pg.status == pq.ConnStatus.OK
        assert pg.pipeline_status == pq.PipelineStatus.OFF

    on_lane(test)


def test_a_connection_lost_while_the_loop_stopped_watching_still_fails_its_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # uvloop closes its watch on a socket whose poll reports an error (a reset
    # from a server that went away) and never calls the reader again; the
    # lane's own timer must find the broken connection.
    monkeypatch.setattr(_lanes, "WATCH_SECONDS", 0.01)

    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        request = asyncio.ensure_future(lane.run([SETUP, READ]))
        await settle()
        asyncio.get_running_loop().remove_reader(pg.socket)
        pg.broken = psycopg.OperationalError("server closed the connection")
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(request, timeout=5)
        assert lane.closed
        assert closed == [lane]

    on_lane(test)


def test_the_timer_leaves_a_slow_request_on_a_working_connection_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_lanes, "WATCH_SECONDS", 0.01)

    async def test(lane: _lanes.Lane, pg: PGconn, closed: list[Any]) -> None:
        request = asyncio.ensure_future(lane.run([SETUP, READ]))
        await asyncio.sleep(0.1)  # ten rounds of the timer, nothing to read
        assert not request.done()
        pg.answer(OK, OK, OK, OK)
        assert await request is None
        assert not lane.closed
        assert not closed

    on_lane(test)
