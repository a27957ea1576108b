"""Facts pgfortress reads from a host, each into a typed shape.

pyinfra reads a fact with one SSH command each time it is asked, and keeps
nothing. With many hosts, those round trips are most of what a run costs the
control machine and the hosts, so the roles read what they need while pyinfra
prepares: :func:`prefetch` gets several facts in one command
(:class:`FactBatch`, each fact's own command and parser), :func:`prepared_fact`
returns a fact read once per host, and operations that are handed a fact's
value (``stage_config(live=…)``) read nothing more when they run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pyinfra.api.facts import FactBase
from pyinfra.api.host import Host
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_host, host, state

from pgfortress.batch import batched_command, split_batch
from pgfortress.catalog import CatalogState, catalog_query, parse_catalog
from pgfortress.catalog_reads import (
    QUERY_VARIABLE,
    catalogs_script,
    catalogs_variables,
)
from pgfortress.plan.apply import FileState, file_state_command, parse_file_state
from pgfortress.plan.directory import (
    DirectoryState,
    directory_state_command,
    parse_directory_state,
)
from pgfortress.plan.layout import CLUSTERS_COMMAND, installed_majors
from pgfortress.plan.os_release import OS_RELEASE_COMMAND, OsRelease, parse_os_release
from pgfortress.plan.packages import installed_packages, package_state_command
from pgfortress.plan.server_state import (
    NEWEST,
    ServerState,
    parse_server_state,
    server_state_queries,
)
from pgfortress.plan.service import (
    ServiceState,
    parse_service_state,
    service_state_command,
)
from pgfortress.plan.socket_group import (
    GroupMembership,
    membership_command,
    parse_membership,
)

__all__ = [
    "ConfigFileState",
    "DebPackagesInstalled",
    "DirectoryOwnerMode",
    "FactBatch",
    "FactRead",
    "GroupMember",
    "HostRelease",
    "InterfaceAddresses",
    "PostgresCatalog",
    "PostgresCatalogs",
    "PostgresClusters",
    "PostgresServerState",
    "ServiceUnitState",
    "prefetch",
    "prepared_fact",
    "psql_command",
]

T = TypeVar("T")

# Facts read while pyinfra prepares, per host: (fact class, arguments) → value.
_PREPARED: WeakKeyDictionary[Host, dict[tuple[type, str], Any]] = WeakKeyDictionary()


def prepared_fact(cls: type[FactBase[T]], **kwargs: Any) -> T:
    """``host.get_fact``, read once per host while pyinfra prepares.

    pyinfra keeps no fact between two reads, so two roles that need the same
    fact (the host's release, its clusters) would each cost a round trip.
    Nothing on the host changes before the execute stage, so a value read
    then stays true until it starts; after that, every read is a fresh one.
    Callers must not change the value they get.
    """
    if state.current_stage != StateStage.Prepare:
        return host.get_fact(cls, **kwargs)
    real: Host = ctx_host.get()  # type: ignore[no-untyped-call]
    known = _PREPARED.setdefault(real, {})  # keyed on the Host behind ``host``
    key = (cls, repr(sorted(kwargs.items())))
    if key not in known:
        known[key] = host.get_fact(cls, **kwargs)
    value: T = known[key]
    return value


FactRead = tuple[type[FactBase[Any]], dict[str, Any]]


def prefetch(*reads: FactRead) -> None:
    """Read several facts in one round trip, for :func:`prepared_fact` to
    return; outside pyinfra's prepare stage, does nothing.

    Each fact's own command and parser are used, so a fact read this way
    holds what ``host.get_fact`` would have returned. A fact whose command
    is missing on the host gets its default, as pyinfra gives it while
    preparing; one that fails fails the host, as it would alone.
    """
    if state.current_stage != StateStage.Prepare:
        return
    real: Host = ctx_host.get()  # type: ignore[no-untyped-call]
    known = _PREPARED.setdefault(real, {})
    wanted = [(c, k) for c, k in reads if (c, repr(sorted(k.items()))) not in known]
    if not wanted:
        return
    sections: list[list[str]] = host.get_fact(FactBatch, reads=wanted)
    if len(sections) != len(wanted):
        return  # the batch failed and pyinfra failed the host: read nothing
    for (cls, kwargs), lines in zip(wanted, sections, strict=True):
        fact = cls()
        if not lines or lines == [_MISSING]:
            value = fact.default()
        else:
            value = fact.process(lines)
        known[(cls, repr(sorted(kwargs.items())))] = value


_MISSING = "##pgfortress-no-command##"


class FactBatch(FactBase[list[list[str]]]):
    """The output lines of several facts' commands, read in one round trip.

    Not for facts that batch reads themselves (:class:`PostgresCatalogs`):
    their section markers would end the outer sections.
    """

    def command(self, reads: Sequence[FactRead]) -> str:
        return batched_command([_fact_command(cls(), kw) for cls, kw in reads])

    @staticmethod
    def default() -> list[list[str]]:
        return []

    def process(self, output: Iterable[str]) -> list[list[str]]:
        return split_batch(output)


def _fact_command(fact: FactBase[Any], kwargs: dict[str, Any]) -> str:
    command = fact.command(**kwargs) if callable(fact.command) else fact.command
    needs = fact.requires_command(**kwargs)
    if not needs:
        return str(command)
    return (
        f"if command -v {needs} >/dev/null 2>&1; then ( {command} ); "
        f"else echo '{_MISSING}'; fi"
    )


# Run the rest of a command line as the postgres OS user. setpriv changes
# user and groups and nothing else: runuser would also open a PAM session,
# which costs the host more than the switch itself, for every psql a run
# starts. env -C /: psql would otherwise complain it cannot enter root's cwd.
AS_POSTGRES = (
    "setpriv --reuid=postgres --regid=postgres --init-groups --reset-env env -C /"
)


def psql_command(*args: str, database: str = "postgres", psql: str = "psql") -> str:
    """psql as the postgres OS user over the local socket, no user rc files.

    ``psql`` is best the server's own (``PostgresLayout.psql_binary``): Debian's
    ``psql`` on the PATH is a Perl wrapper that picks a version first, which
    costs the host more CPU than psql itself.
    """
    base = f"{AS_POSTGRES} {shlex.quote(psql)} -X -q"
    quoted = (shlex.quote(a) for a in ("-v", "ON_ERROR_STOP=1", "-d", database, *args))
    return " ".join([base, *quoted])


def _has_psql(psql: str) -> str:
    """Shell test: is ``psql`` there to run (not yet, before the install)?"""
    if "/" in psql:
        return f"[ -x {shlex.quote(psql)} ]"
    return f"command -v {shlex.quote(psql)} >/dev/null"


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


class DebPackagesInstalled(FactBase[set[str]]):
    """Which of ``packages`` are installed, asked of dpkg for them alone."""

    def requires_command(self, packages: list[str]) -> str:
        return "dpkg-query"

    def command(self, packages: list[str]) -> str:
        return package_state_command(packages)

    @staticmethod
    def default() -> set[str]:
        return set()

    def process(self, output: Iterable[str]) -> set[str]:
        return installed_packages(output)


class GroupMember(FactBase[GroupMembership]):
    """Whether ``group`` exists and ``user`` belongs to it."""

    def command(self, user: str, group: str) -> str:
        return membership_command(user, group)

    def process(self, output: Iterable[str]) -> GroupMembership:
        return parse_membership(output)


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


class DirectoryOwnerMode(FactBase[DirectoryState]):
    """Whether ``path`` is a directory, and its owner and mode."""

    def command(self, path: str) -> str:
        return directory_state_command(path)

    def process(self, output: Iterable[str]) -> DirectoryState:
        return parse_directory_state(list(output))


class PostgresServerState(FactBase[ServerState]):
    """What the running server says of itself, from one psql process
    (:mod:`pgfortress.plan.server_state`): whether it has caught up with
    ``paths`` (its configuration files) and, with ``probe_role``, that
    database role's login flag and a digest of its verifier.

    Empty when PostgreSQL is not installed or not running yet: nothing is
    stale, and the probe role will be created once the server is up.
    """

    def command(
        self, paths: list[str], psql: str = "psql", probe_role: str | None = None
    ) -> str:
        queries = [arg for q in server_state_queries(probe_role) for arg in ("-c", q)]
        read = psql_command("-A", "-t", "-F", "|", *queries, psql=psql)
        quoted = " ".join(shlex.quote(p) for p in paths)
        return (
            f"if {_has_psql(psql)} && state=$({read} 2>/dev/null); then "
            "printf '%s\\n' \"$state\"; "
            f'echo "{NEWEST} $(stat -c %Y {quoted} 2>/dev/null | sort -n | tail -1)"; '
            "fi"
        )

    @staticmethod
    def default() -> ServerState:
        return ServerState()

    def process(self, output: Iterable[str]) -> ServerState:
        return parse_server_state(output)


class HostRelease(FactBase[OsRelease]):
    """The host's distribution and major, from ``os-release`` in one process
    (:mod:`pgfortress.plan.os_release`)."""

    def command(self) -> str:
        return OS_RELEASE_COMMAND

    @staticmethod
    def default() -> OsRelease:
        return OsRelease()

    def process(self, output: Iterable[str]) -> OsRelease:
        return parse_os_release(output)


class ServiceUnitState(FactBase[ServiceState]):
    """Whether a systemd ``unit`` runs and is enabled, from one ``systemctl``
    (pyinfra's ``SystemdStatus`` and ``SystemdEnabled`` start one each)."""

    def requires_command(self, unit: str) -> str:
        return "systemctl"

    def command(self, unit: str) -> str:
        return service_state_command(unit)

    @staticmethod
    def default() -> ServiceState:
        return ServiceState()

    def process(self, output: Iterable[str]) -> ServiceState:
        return parse_service_state(output)


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


class PostgresCatalogs(FactBase[list[CatalogState | None]]):
    """:class:`PostgresCatalog` of several databases, in the order of
    ``databases`` (the first one is where psql connects first), in one round
    trip and one psql process (:mod:`pgfortress.catalog_reads`)."""

    def command(
        self, databases: Sequence[str], version_num: int, psql: str = "psql"
    ) -> str:
        variables = {QUERY_VARIABLE: catalog_query(version_num)}
        variables |= catalogs_variables(databases)
        settings = (f"--set={name}={value}" for name, value in variables.items())
        read = psql_command("-A", "-t", *settings, database=databases[0], psql=psql)
        script = catalogs_script(len(databases))
        # A server that is down, or a connection that fails half way, leaves
        # the sections it did not reach out: the caller reads them as None.
        return (
            f"if {_has_psql(psql)}; then {read} 2>/dev/null "
            f"<<'PGF_CATALOGS' || true\n{script}PGF_CATALOGS\nfi"
        )

    @staticmethod
    def default() -> list[CatalogState | None]:
        # No psql yet, so nothing printed: the caller plans for fresh ones.
        return []

    def process(self, output: Iterable[str]) -> list[CatalogState | None]:
        sections = split_batch(output)
        texts = ("\n".join(lines).strip() for lines in sections)
        return [parse_catalog(text) if text else None for text in texts]
