"""One request's transaction sent through libpq's pipeline, without cursors.

The gateway's requests now go through lanes (:mod:`._lanes`), which pipeline
many requests on one connection and share this module's per-connection state
(prepared names, transformer); :func:`run_pair` runs one request's pair on a
connection of its own.

psycopg's cursor and pipeline objects cost more CPU per request than anything
else between the HTTP server and PostgreSQL (docs/benchmarks.md): a request
only ever sends two statements and reads one row. :func:`run_pair` sends them
on the connection's own libpq handle (``conn.pgconn``), in pipeline mode:

    Bind+Execute setup, Bind+Execute statement, Sync

then waits for the Sync's result and returns the statement's single row. The
Sync ends the implicit transaction in which both ran, so the role and claims
that the setup sets locally last for this request only, and a failure in
either statement rolls both back.

Every value stays a bound parameter: the text is converted and the values
dumped by psycopg's own :class:`~psycopg.adapt.Transformer`, exactly as a
cursor would. Each connection prepares a statement text the first time it
sends it (Parse in the same pipeline) and reuses it by name afterwards,
up to :data:`MAX_PREPARED` names per connection; past that, texts go unnamed.
A prepared statement that the server reports as invalid (its result type
changed with the schema) or unknown is forgotten, and prepared again on its
next use.

``PostgresQuery`` comes from a private module of psycopg (the one its cursors
use to convert a query and dump its values): a psycopg release that moves it
fails this module's import, and so every gateway test, not a request.

A request that fails half-way through its I/O (the connection dropped, the
task was cancelled) leaves results unread on the connection: the connection
is closed, and the pool replaces it, rather than handed to the next request.
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg
from psycopg import abc, pq
from psycopg._queries import PostgresQuery
from psycopg.adapt import Transformer
from psycopg.generators import fetch_many, send

__all__ = ["MAX_PREPARED", "run_pair"]

MAX_PREPARED = 128

_FATAL = pq.ExecStatus.FATAL_ERROR
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_TUPLES = pq.ExecStatus.TUPLES_OK
_OK = pq.ExecStatus.COMMAND_OK
_SQLSTATE = pq.DiagnosticField.SQLSTATE


class _State:
    """What one connection keeps between requests: its prepared statements
    (text → name), the texts whose Parse is on its way (on a lane, see
    :mod:`._lanes`) and the transformer that dumps values and loads rows."""

    __slots__ = ("created", "names", "parsing", "transformer")

    def __init__(self, transformer: abc.Transformer) -> None:
        self.names: dict[bytes, bytes] = {}
        self.parsing: set[bytes] = set()
        self.created = 0
        self.transformer = transformer


_states: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], _State] = (
    weakref.WeakKeyDictionary()
)


def _state(conn: psycopg.AsyncConnection[Any]) -> _State:
    state = _states.get(conn)
    if state is None:
        state = _states[conn] = _State(Transformer(conn))
    return state


# Errors after which a prepared statement cannot be run again as it is: the
# plan's result type changed with the schema (0A000), or it no longer exists.
_STALE = {b"0A000", b"26000"}


def _queue(
    pgconn: pq.abc.PGconn, state: _State, query: PostgresQuery, commands: list[bytes]
) -> None:
    """Queue one statement: Parse first when its text is new to the
    connection. ``commands`` gets one entry per command queued: the name it
    prepares (b"+name"), or the name it runs (b"" when unnamed)."""
    name = state.names.get(query.query)
    if name is None and state.created < MAX_PREPARED:
        name = b"pgf_%d" % state.created
        state.created += 1
        pgconn.send_prepare(name, query.query, param_types=query.types)
        commands.append(b"+" + name)
    if name is None:
        pgconn.send_query_params(
            query.query,
            query.params,
            param_formats=query.formats,
            param_types=query.types,
        )
        commands.append(b"")
    else:
        pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
        commands.append(name)


async def run_pair(
    conn: psycopg.AsyncConnection[Any],
    setup: tuple[Any, tuple[object, ...]],
    statement: tuple[Any, tuple[object, ...]],
) -> tuple[Any, ...] | None:
    """Run ``setup`` then ``statement`` in one transaction; the statement's
    first row, or None. A database error is raised as psycopg's exception."""
    state = _state(conn)
    texts: dict[bytes, bytes] = {}
    commands: list[bytes] = []
    queries = []
    for text, params in (setup, statement):
        # A value that cannot be dumped fails here, before anything is sent.
        query = PostgresQuery(state.transformer)
        query.convert(text, params)
        queries.append(query)
    pgconn = conn.pgconn
    try:
        pgconn.enter_pipeline_mode()
        for query in queries:
            _queue(pgconn, state, query, commands)
            texts[commands[-1]] = query.query
        pgconn.pipeline_sync()
        await conn.wait(send(pgconn))
        results: list[pq.abc.PGresult] = []
        while True:
            batch = await conn.wait(fetch_many(pgconn))
            if batch and batch[0].status == _SYNC:
                break
            results.append(batch[-1])
        pgconn.exit_pipeline_mode()
    except BaseException:
        # Results may be left unread: no later request may use this connection.
        await conn.close()
        raise

    failed = None
    for command, result in zip(commands, results, strict=True):
        status = result.status
        if status == _FATAL:
            failed = result
            stale = result.error_field(_SQLSTATE) in _STALE
            if command and not command.startswith(b"+") and stale:
                state.names.pop(texts[command], None)
        elif status == _OK and command.startswith(b"+"):
            state.names[texts[command[1:]]] = command[1:]
    if failed is not None:
        raise psycopg.errors.error_from_result(failed, encoding=pgconn._encoding)
    last = results[-1]
    if last.status != _TUPLES or last.ntuples == 0:
        return None
    transformer = state.transformer
    transformer.set_pgresult(last)
    row: tuple[Any, ...] = transformer.load_row(0, tuple)
    return row
