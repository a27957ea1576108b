"""Facts pgfortress reads from a host, each into a typed shape."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable

from pyinfra.api.facts import FactBase

from pgfortress.catalog import CatalogState, catalog_query, parse_catalog
from pgfortress.plan.apply import FileState, file_state_command, parse_file_state
from pgfortress.plan.layout import CLUSTERS_COMMAND, installed_majors
from pgfortress.plan.probe import ProbeState, parse_probe_state, probe_state_query

__all__ = [
    "ConfigFileState",
    "InterfaceAddresses",
    "PostgresCatalog",
    "PostgresClusters",
    "PostgresConfigState",
    "PostgresProbeRole",
    "psql_command",
]


def psql_command(*args: str, database: str = "postgres") -> str:
    """psql as the postgres OS user over the local socket, no user rc files."""
    # env -C /: psql would otherwise complain it cannot enter root's cwd.
    base = "runuser -u postgres -- env -C / psql -X -q -v ON_ERROR_STOP=1"
    quoted = (shlex.quote(a) for a in ("-d", database, *args))
    return " ".join([base, *quoted])


class InterfaceAddresses(FactBase[dict[str, list[str]]]):
    """Interface name → its IPv4 and IPv6 addresses, read with ``ip -j``."""

    def requires_command(self) -> str:
        return "ip"

    def command(self) -> str:
        return "ip -j addr show"

    def process(self, output: Iterable[str]) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for link in json.loads("".join(output)):
            addresses = [info["local"] for info in link.get("addr_info", [])]
            result[link["ifname"]] = addresses
        return result


class PostgresClusters(FactBase[list[int]]):
    """The PostgreSQL majors that have a ``main`` cluster on the host; [] if none."""

    def command(self) -> str:
        return CLUSTERS_COMMAND

    @staticmethod
    def default() -> list[int]:
        # pyinfra gives a fact that printed nothing its default.
        return []

    def process(self, output: Iterable[str]) -> list[int]:
        return installed_majors(output)


class ConfigFileState(FactBase[FileState]):
    """A live configuration file's digest, owner and mode, in one round trip.

    Also says whether a candidate (``<file>.pgf-candidate``) waits next to it,
    which only happens when an earlier run stopped before applying it.
    """

    def command(self, path: str) -> str:
        return file_state_command(path)

    def process(self, output: Iterable[str]) -> FileState:
        return parse_file_state(list(output))


class PostgresProbeRole(FactBase[ProbeState | None]):
    """The probe role's login flag and a digest of its verifier, or None.

    None also when PostgreSQL is not installed or not running yet: the role
    will then be created after the server is up.
    """

    def command(self, role: str) -> str:
        query = psql_command("-A", "-t", "-F", "|", "-c", probe_state_query(role))
        return f"if command -v psql >/dev/null && {query} 2>/dev/null; then :; fi"

    def process(self, output: Iterable[str]) -> ProbeState | None:
        return parse_probe_state("\n".join(output))


class PostgresConfigState(FactBase[dict[str, int] | None]):
    """Whether the running server has caught up with its configuration files.

    ``loaded_at`` is when the server last read its configuration, ``newest``
    the newest modification time among ``paths``; ``pending_restart`` counts
    settings read but waiting for a restart. None when PostgreSQL is not
    running (or not installed): there is nothing stale to catch up.
    """

    def command(self, paths: list[str]) -> str:
        query = psql_command(
            "-A",
            "-t",
            "-F",
            " ",
            "-c",
            "SELECT extract(epoch FROM pg_conf_load_time())::bigint, "
            "(SELECT count(*) FROM pg_settings WHERE pending_restart)",
        )
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (
            f"if state=$({query} 2>/dev/null); then echo $state "
            f"$(stat -c %Y {quoted} 2>/dev/null | sort -n | tail -1); fi"
        )

    def process(self, output: Iterable[str]) -> dict[str, int] | None:
        fields = " ".join(output).split()
        if len(fields) < 3:
            return None
        loaded_at, pending, newest = (int(f) for f in fields[:3])
        return {"loaded_at": loaded_at, "pending_restart": pending, "newest": newest}


class PostgresCatalog(FactBase[CatalogState | None]):
    """One database's roles, memberships, privileges and defaults, in one query.

    None when PostgreSQL is not installed or running yet, or the database does
    not exist: the planner then plans for a fresh cluster or database.
    """

    def command(self, database: str, version_num: int) -> str:
        query = psql_command(
            "-A", "-t", "-c", catalog_query(version_num), database=database
        )
        return f"if command -v psql >/dev/null; then {query} 2>/dev/null || true; fi"

    def process(self, output: Iterable[str]) -> CatalogState | None:
        text = "\n".join(output).strip()
        return parse_catalog(text) if text else None
