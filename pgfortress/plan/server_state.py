"""What the running server says of itself while pyinfra prepares.

Two reads need a connection to the server: whether it has read its
configuration files since they last changed, and the probe database role's
state. Each psql process costs the host a fork, a login and a backend, so
:func:`server_state_queries` gives both queries to one psql, and
:func:`parse_server_state` reads its lines and the files' newest modification
time printed after them. Nothing printed means the server is not running (or
not installed): there is nothing stale to catch up, and no role to compare.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .probe import ProbeState, parse_probe_state, probe_state_query

__all__ = [
    "NEWEST",
    "ConfigState",
    "ServerState",
    "parse_server_state",
    "server_state_queries",
]

# The line that carries the newest modification time, after psql's lines.
NEWEST = "newest:"

CONFIG_QUERY = (
    "SELECT extract(epoch FROM pg_conf_load_time())::bigint, "
    "(SELECT count(*) FROM pg_settings WHERE pending_restart)"
)


@dataclass(frozen=True)
class ConfigState:
    """When the server last read its configuration (``loaded_at``), how many
    settings wait for a restart, and the newest modification time among the
    files it must have read (``newest``), all in seconds since the epoch."""

    loaded_at: int
    pending_restart: int
    newest: int


@dataclass(frozen=True)
class ServerState:
    """None where the server did not answer (or, for ``probe``, where the
    role does not exist or was not asked for)."""

    config: ConfigState | None = None
    probe: ProbeState | None = None


def server_state_queries(probe_role: str | None) -> list[str]:
    """The queries, in the order :func:`parse_server_state` reads their rows;
    each returns exactly one row."""
    queries = [CONFIG_QUERY]
    if probe_role is not None:
        queries.append(probe_state_query(probe_role))
    return queries


def parse_server_state(lines: Iterable[str]) -> ServerState:
    """psql's unaligned ``-F'|'`` rows, then the :data:`NEWEST` line. A
    second row is the probe role's (it is there when it was asked for)."""
    rows: list[str] = []
    newest: int | None = None
    for line in lines:
        text = line.strip()
        if text.startswith(NEWEST):
            value = text[len(NEWEST) :].strip()
            newest = int(value) if value else None
        elif text:
            rows.append(text)
    if not rows:
        return ServerState()
    config = None
    if newest is not None:
        loaded_at, pending = (int(f) for f in rows[0].split("|"))
        config = ConfigState(loaded_at, pending, newest)
    probe = None
    if len(rows) > 1:
        probe = parse_probe_state(rows[1])
    return ServerState(config, probe)
