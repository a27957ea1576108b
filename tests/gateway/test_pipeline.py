"""The per-request pipeline's bookkeeping, on a stand-in libpq connection.

What is sent (Parse only for a text new to the connection, values as bound
parameters), which names a connection keeps after success and failure, and
that a connection whose I/O failed half-way is closed. The real exchange with
PostgreSQL is proved by the lab tests (tests/lab/test_gateway.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import psycopg
import pytest
from pgfortress_gateway import _pipeline
from psycopg import pq
from psycopg.adapt import Transformer

from ._libpq import ABORTED, FATAL, OK, READ, SETUP, SYNC, Result, Sender


class PGconn(Sender):
    """Records what is queued; answers each command with the next status."""

    def __init__(self) -> None:
        super().__init__()
        self.in_pipeline = False

    def enter_pipeline_mode(self) -> None:
        self.in_pipeline = True

    def exit_pipeline_mode(self) -> None:
        self.in_pipeline = False


class Connection:
    def __init__(self, *answers: pq.ExecStatus | Result | BaseException) -> None:
        self.pgconn = PGconn()
        self.answers: deque[Any] = deque(answers)
        self.closed = False

    async def wait(self, gen: str) -> list[Any]:
        if gen == "send":
            return []
        answer = self.answers.popleft() if self.answers else SYNC
        if isinstance(answer, BaseException):
            raise answer
        return [answer if isinstance(answer, Result) else Result(answer)]

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def stand_in_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pipeline, "send", lambda pgconn: "send")
    monkeypatch.setattr(_pipeline, "fetch_many", lambda pgconn: "fetch")
    monkeypatch.setattr(_pipeline, "Transformer", lambda conn: Transformer())


def run(conn: Connection, *pairs: tuple[str, tuple[object, ...]]) -> Any:
    setup, statement = pairs or (SETUP, READ)
    return asyncio.run(_pipeline.run_pair(conn, setup, statement))  # type: ignore[arg-type]


def test_a_new_text_is_parsed_once_then_run_by_name_with_bound_values() -> None:
    conn = Connection(OK, OK, OK, OK)
    run(conn)
    first = conn.pgconn.sent
    conn.pgconn.sent = []
    conn.answers.extend([OK, OK])
    run(conn, SETUP, ("SELECT body FROM api.customers WHERE id = %s", ("2",)))

    assert [entry[0] for entry in first] == ["parse", "run", "parse", "run", "sync"]
    assert first[2][2] == b"SELECT body FROM api.customers WHERE id = $1"
    assert first[3][2] == (b"1",)
    assert conn.pgconn.sent == [
        ("run", first[1][1], (b"web_user",)),
        ("run", first[3][1], (b"2",)),
        ("sync",),
    ]
    assert not conn.pgconn.in_pipeline
    assert not conn.closed


def test_a_failed_parse_is_not_kept_and_the_error_is_psycopgs_own() -> None:
    conn = Connection(OK, OK, Result(FATAL, b"42601"), ABORTED)
    with pytest.raises(psycopg.errors.SyntaxError):
        run(conn)
    conn.pgconn.sent = []
    conn.answers.extend([OK, OK, OK])
    run(conn)

    kinds = [entry[0] for entry in conn.pgconn.sent]
    assert kinds == ["run", "parse", "run", "sync"]
    assert not conn.closed


def test_a_statement_invalidated_by_a_schema_change_is_prepared_again() -> None:
    conn = Connection(OK, OK, OK, OK)
    run(conn)
    conn.answers.extend([OK, Result(FATAL, b"0A000")])
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        run(conn)
    conn.pgconn.sent = []
    conn.answers.extend([OK, OK, OK])
    run(conn)

    assert [entry[0] for entry in conn.pgconn.sent] == ["run", "parse", "run", "sync"]


def test_a_value_error_keeps_the_prepared_statement() -> None:
    conn = Connection(OK, OK, OK, Result(FATAL, b"22P02"))
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        run(conn)
    conn.pgconn.sent = []
    conn.answers.extend([OK, OK])
    run(conn)

    assert [entry[0] for entry in conn.pgconn.sent] == ["run", "run", "sync"]


def test_past_the_limit_texts_go_unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pipeline, "MAX_PREPARED", 2)
    conn = Connection(OK, OK, OK, OK)
    run(conn)
    conn.pgconn.sent = []
    conn.answers.extend([OK, OK])
    run(conn, SETUP, ("SELECT name FROM api.customers WHERE id = %s", ("3",)))

    assert [entry[0] for entry in conn.pgconn.sent] == ["run", "run unnamed", "sync"]


@pytest.mark.parametrize(
    "failure",
    [psycopg.OperationalError("connection lost"), asyncio.CancelledError()],
    ids=["connection lost", "cancelled"],
)
def test_a_connection_whose_io_failed_is_closed(failure: BaseException) -> None:
    conn = Connection(OK, failure)
    with pytest.raises(type(failure)):
        run(conn)
    assert conn.closed
