"""Requests pipelined on a few long-lived connections ("lanes").

A lane holds one authenticator connection, taken from the pool, in libpq's
pipeline mode for as long as the connection works. Each request queues its
two statements and a Sync on a lane and waits for that Sync's results; the
next request may be queued behind it before those arrive. Every Sync ends the
implicit transaction of its request, so the role and claims that a request's
setup sets locally never reach the next request on the same lane, and a
failure in one request leaves the next one untouched (PostgreSQL skips the
rest of a failed request up to its Sync, not beyond).

Compared with checking a connection out of the pool for every request
(:func:`._pipeline.run_pair`), a request costs no pool checkout and return,
no wait registered and removed on the socket for each step, and the answers
to several requests are read with one wake-up: the lane reads whenever its
socket is readable and hands each Sync's results to the request that sent it.

A request that is cancelled while it waits (its client went away) leaves its
results to be read and dropped by the lane. A failure of the connection
itself fails every request waiting on the lane with
:class:`psycopg.OperationalError`; the lane closes and gives the broken
connection back to the pool, which replaces it.

The lane does not rely on the event loop alone to learn that its connection
failed. uvloop (what uvicorn runs on) stops watching a socket for good when
the poll reports an error, as after the server went away and answered a
request with a reset, and never calls the reader again. So while requests
wait, the lane also reads on a timer (:data:`WATCH_SECONDS`): on a broken
connection that read fails, and the requests get their 503.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq
from psycopg._queries import PostgresQuery

from ._pipeline import MAX_PREPARED, _State, _state

__all__ = ["Lane"]

_FATAL = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES = pq.ExecStatus.TUPLES_OK
_OK = pq.ExecStatus.COMMAND_OK
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_STALE = {b"0A000", b"26000"}

# How often a lane with requests in flight reads without being told to.
WATCH_SECONDS = 1.0


class _Request:
    """One request on a lane: what it queued and the results come back."""

    __slots__ = ("commands", "future", "results", "texts")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.commands: list[bytes] = []
        self.texts: list[bytes] = []
        self.results: list[pq.abc.PGresult] = []


def _queue(
    pgconn: pq.abc.PGconn, state: _State, query: PostgresQuery, request: _Request
) -> None:
    """Queue one statement: Parse first when its text is new to the
    connection. A text whose Parse is still on its way goes unnamed, so that
    no request depends on another request's Parse."""
    text = query.query
    name = state.names.get(text)
    if name is None and state.created < MAX_PREPARED and text not in state.parsing:
        name = b"pgf_%d" % state.created
        state.created += 1
        state.parsing.add(text)
        pgconn.send_prepare(name, text, param_types=query.types)
        request.commands.append(b"+" + name)
        request.texts.append(text)
    if name is None:
        pgconn.send_query_params(
            text, query.params, param_formats=query.formats, param_types=query.types
        )
        request.commands.append(b"")
    else:
        pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
        request.commands.append(name)
    request.texts.append(text)


class Lane:
    """One pipelined connection; :meth:`run` queues a request on it."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        on_close: Callable[[Lane], None],
    ) -> None:
        self.conn = conn
        self.closed = False
        self._pgconn = conn.pgconn
        self._state = _state(conn)
        self._pending: deque[_Request] = deque()
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._flush_soon = False
        self._writing = False
        self._watch: asyncio.TimerHandle | None = None
        self._fd = self._pgconn.socket
        self._pgconn.enter_pipeline_mode()
        self._loop.add_reader(self._fd, self._readable)

    @property
    def load(self) -> int:
        """Requests sent on this lane and not yet answered."""
        return len(self._pending)

    async def run(
        self, statements: list[tuple[Any, tuple[object, ...]]]
    ) -> tuple[Any, ...] | None:
        """Run ``statements`` in one transaction; the last one's first row,
        or None. A database error is raised as psycopg's exception."""
        if self.closed:
            raise psycopg.OperationalError("the database connection was lost")
        queries = []
        for text, params in statements:
            # A value that cannot be dumped fails here, before anything is sent.
            query = PostgresQuery(self._state.transformer)
            query.convert(text, params)
            queries.append(query)
        request = _Request(self._loop.create_future())
        pgconn = self._pgconn
        try:
            for query in queries:
                _queue(pgconn, self._state, query, request)
            pgconn.pipeline_sync()
        except psycopg.Error as error:
            self.close(error)
            raise psycopg.OperationalError(
                "the database connection was lost"
            ) from error
        self._pending.append(request)
        if self._watch is None:
            self._watch = self._loop.call_later(WATCH_SECONDS, self._watchdog)
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        row: tuple[Any, ...] | None = await request.future
        return row

    def close(self, error: BaseException | None = None) -> None:
        """Stop the lane: fail what waits on it and close its connection,
        unless nothing was in flight and nothing failed."""
        if self.closed:
            return
        self.closed = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        # Also when uvloop has closed its watch on the socket: removing it
        # forgets the closed watch, which would otherwise refuse the next
        # connection that gets the same descriptor number.
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        lost = psycopg.OperationalError("the database connection was lost")
        if error is not None:
            lost.__cause__ = error
        if error is None and not self._pending and not self._writing:
            # Nothing in flight: the connection goes back to the pool as it is.
            try:
                self._pgconn.exit_pipeline_mode()
            except psycopg.Error as failed:
                error = failed
        while self._pending:
            future = self._pending.popleft().future
            if not future.done():
                future.set_exception(lost)
        if error is not None or self._pgconn.pipeline_status != pq.PipelineStatus.OFF:
            self._pgconn.finish()
        self._on_close(self)

    def _flush(self) -> None:
        self._flush_soon = False
        if self.closed:
            return
        try:
            unsent = self._pgconn.flush()
        except psycopg.Error as error:
            self.close(error)
            return
        if unsent and not self._writing:
            self._writing = True
            self._loop.add_writer(self._fd, self._flush)
        elif not unsent and self._writing:
            self._writing = False
            self._loop.remove_writer(self._fd)

    def _watchdog(self) -> None:
        """Read as if the socket were readable: a broken connection fails
        here even when the event loop stopped reporting on it."""
        self._watch = None
        if self.closed or not self._pending:
            return
        self._readable()
        if not self.closed and self._pending:
            self._watch = self._loop.call_later(WATCH_SECONDS, self._watchdog)

    def _readable(self) -> None:
        pgconn = self._pgconn
        try:
            pgconn.consume_input()
            nothing = 0
            while self._pending and not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    # The end of one command's results; twice in a row means
                    # libpq expects nothing more, whatever the lane thought.
                    nothing += 1
                    if nothing > 1:
                        raise psycopg.OperationalError("results out of step")
                    continue
                nothing = 0
                if result.status == _SYNC:
                    request = self._pending.popleft()
                    try:
                        self._answer(request)
                    except Exception as error:
                        if not request.future.done():
                            request.future.set_exception(error)
                        raise
                else:
                    self._pending[0].results.append(result)
        except Exception as error:
            # Whatever went wrong, no request may wait for answers forever.
            self.close(error)
            return
        if not self._pending and pgconn.status == pq.ConnStatus.BAD:
            self.close()

    def _answer(self, request: _Request) -> None:
        state = self._state
        failed = None
        for command, text, result in zip(
            request.commands, request.texts, request.results, strict=True
        ):
            if command.startswith(b"+"):
                state.parsing.discard(text)
                if result.status == _OK:
                    state.names[text] = command[1:]
            if result.status == _FATAL:
                failed = failed or result
                stale = result.error_field(_SQLSTATE) in _STALE
                if command and not command.startswith(b"+") and stale:
                    state.names.pop(text, None)
        future = request.future
        if future.done():  # cancelled: the caller is gone
            return
        if failed is not None:
            encoding = self._pgconn._encoding
            future.set_exception(
                psycopg.errors.error_from_result(failed, encoding=encoding)
            )
            return
        last = request.results[-1] if request.results else None
        if last is None or last.status != _TUPLES or last.ntuples == 0:
            future.set_result(None)
            return
        transformer = state.transformer
        transformer.set_pgresult(last)
        future.set_result(transformer.load_row(0, tuple))
