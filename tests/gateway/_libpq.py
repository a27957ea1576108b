"""What the stand-in libpq connections of test_pipeline and test_lanes share:
the two statements of a request and a result that carries only a status and
a SQLSTATE."""

from __future__ import annotations

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
