"""One JSON line per request: who, as which role, did what, with what result.

What is left out, on purpose:

- the query string, whole. PostgREST filters carry values in it
  (``?email=eq.alice@example.com``), and clients sometimes paste tokens
  into URLs; only the path (``/orders``, ``/rpc/refund``) is logged;
- credentials of any kind: the caller passes the token's subject, never the
  token, and a refusal reason from :mod:`.auth`, which never contains one.

Values that come from the client (path, method, address, reason) are cut to
a fixed length, and json's string escaping (the one ``json.dumps`` uses)
escapes control characters, so a request cannot forge or split audit lines.
Keys are sorted so lines diff well.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quoted

from .logsink import BatchedStreamHandler

__all__ = ["AUDIT_LOGGER", "audit_line", "log_request"]

AUDIT_LOGGER = logging.getLogger("pgfortress_gateway.audit")

MAX_PATH = 256
MAX_FIELD = 128


def _text(value: str | None, limit: int = MAX_FIELD) -> str:
    """A client's value cut to ``limit``, as a JSON string (or null)."""
    return "null" if value is None else _quoted(value[:limit])


def _timestamp(now: float) -> str:
    """``now`` in UTC to the millisecond, as ``datetime.isoformat`` writes it:
    rounded to the microsecond (half to even), then cut to milliseconds."""
    seconds, fraction = divmod(now, 1)
    micro = round(fraction * 1e6)
    if micro == 1_000_000:
        seconds, micro = seconds + 1, 0
    return f"{_whole_second(seconds)}.{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _whole_second(seconds: float) -> str:
    """Computed once a second: every line of that second starts the same."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="seconds").removesuffix("+00:00")


def audit_line(
    subject: str | None,
    role: str | None,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    client: str | None,
    *,
    reason: str | None = None,
    request_id: str | None = None,
    now: float | None = None,
) -> str:
    """Render one audit record; ``path`` may still hold its query string.

    The line is what ``json.dumps(record, sort_keys=True, separators=(",",
    ":"))`` writes, put together here without building the record: keys in
    sorted order, strings escaped by json's own function, the (finite)
    duration as json writes a number."""
    optional = ""
    if reason is not None:
        optional += f',"reason":{_text(reason)}'
    if request_id is not None:
        optional += f',"request_id":{_text(request_id, 64)}'
    bare = path.partition("?")[0].partition("#")[0][:MAX_PATH]
    return (
        f'{{"client":{_text(client, 64)}'
        f',"duration_ms":{round(duration_ms, 1)!r}'
        f',"method":{_quoted(method.upper()[:16])}'
        f',"path":{_quoted(bare)}{optional}'
        f',"role":{_text(role)}'
        f',"status":{status:d}'
        f',"subject":{_text(subject)}'
        f',"ts":"{_timestamp(time.time() if now is None else now)}"}}'
    )


def log_request(
    subject: str | None,
    role: str | None,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    client: str | None,
    *,
    reason: str | None = None,
    request_id: str | None = None,
) -> None:
    """Write the audit line at info level to ``pgfortress_gateway.audit``.

    When the gateway's batched handler is the only place the record would
    reach, the line goes straight to it, formatted as that handler would
    have: no log record is built for it."""
    if not AUDIT_LOGGER.isEnabledFor(logging.INFO):
        return
    line = audit_line(
        subject,
        role,
        method,
        path,
        status,
        duration_ms,
        client,
        reason=reason,
        request_id=request_id,
    )
    handler = BatchedStreamHandler.sole_handler(AUDIT_LOGGER, logging.INFO)
    if handler is None:
        AUDIT_LOGGER.info("%s", line)
    else:
        handler.write_info(AUDIT_LOGGER, line)
