"""One JSON line per request: who, as which role, did what, with what result.

What is left out, on purpose:

- the query string, whole. PostgREST filters carry values in it
  (``?email=eq.alice@example.com``), and clients sometimes paste tokens
  into URLs; only the path (``/orders``, ``/rpc/refund``) is logged;
- credentials of any kind: the caller passes the token's subject, never the
  token, and a refusal reason from :mod:`.auth`, which never contains one.

Values that come from the client (path, method, address, reason) are cut to
a fixed length, and ``json.dumps`` escapes control characters, so a request
cannot forge or split audit lines. Keys are sorted so lines diff well.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

__all__ = ["AUDIT_LOGGER", "audit_line", "log_request"]

AUDIT_LOGGER = logging.getLogger("pgfortress_gateway.audit")

MAX_PATH = 256
MAX_FIELD = 128


def _cut(value: str | None, limit: int = MAX_FIELD) -> str | None:
    return None if value is None else value[:limit]


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
    """Render one audit record; ``path`` may still hold its query string."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    record = {
        "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "subject": _cut(subject),
        "role": _cut(role),
        "method": method.upper()[:16],
        "path": path.partition("?")[0].partition("#")[0][:MAX_PATH],
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "client": _cut(client, 64),
    }
    if reason is not None:
        record["reason"] = _cut(reason)
    if request_id is not None:
        record["request_id"] = _cut(request_id, 64)
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


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
    """Write the audit line at info level to ``pgfortress_gateway.audit``."""
    if AUDIT_LOGGER.isEnabledFor(logging.INFO):
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
        AUDIT_LOGGER.info("%s", line)
