"""What the stand-in libpq connections of test_pipeline and test_lanes share:
the two statements of a request, a result that carries only a status and a
SQLSTATE, and the recording of what is sent."""

from __future__ import annotations

from typing import Any

from psycopg import pq

SETUP = ("SELECT set_config('role', %s, true)", ("web_user",))
READ = ("SELECT body FROM api.customers WHERE id = %s", ("1",))
OK = pq.ExecStatus.COMMAND_OK
ABORTED = pq.ExecStatus.PIPELINE_ABORTED
SYNC = pq.ExecStatus.PIPELINE_SYNC
FATAL = pq.ExecStatus.FATAL_ERROR


class Result:
    """A PGresult as far as the gateway reads one."""

    def __init__(self, status: pq.ExecStatus, sqlstate: bytes = b"") -> None:
        self.status = status
        self.ntuples = 0
        self.sqlstate = sqlstate

    def error_field(self, field: pq.DiagnosticField) -> bytes | None:
        return self.sqlstate if field == pq.DiagnosticField.SQLSTATE else None

    def get_error_message(self, encoding: str = "utf-8") -> str:
        return "server text the client never sees"


class Sender:
    """Records every Parse, execution and Sync queued on the connection."""

    _encoding = "utf-8"

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send_prepare(self, name: bytes, text: bytes, **kwargs: Any) -> None:
        self.sent.append(("parse", name, text))

    def send_query_prepared(self, name: bytes, params: Any, **kwargs: Any) -> None:
        self.sent.append(("run", name, tuple(params)))

    def send_query_params(self, text: bytes, params: Any, **kwargs: Any) -> None:
        self.sent.append(("run unnamed", text, tuple(params)))

    def pipeline_sync(self) -> None:
        self.sent.append(("sync",))
