"""Where Debian's PostgreSQL packages put things, per major version.

Which major a host runs is decided, in this order, by the inventory's
``postgres_version``, by the clusters already on the host (a Debian upgrade
leaves the old major's cluster running until the operator upgrades it), and
by the version the host's Debian release ships.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import SpecError

__all__ = [
    "CLUSTERS_COMMAND",
    "DEBIAN_POSTGRES_VERSIONS",
    "PostgresLayout",
    "installed_majors",
    "layout_for",
    "release_mismatch",
]

# The PostgreSQL major version each Debian release ships.
DEBIAN_POSTGRES_VERSIONS = {11: 13, 12: 15, 13: 17}


@dataclass(frozen=True)
class PostgresLayout:
    """Paths, package and unit names of the ``main`` cluster of one version."""

    version: int
    cluster: str = "main"

    @property
    def config_dir(self) -> str:
        return f"/etc/postgresql/{self.version}/{self.cluster}"

    @property
    def data_dir(self) -> str:
        return f"/var/lib/postgresql/{self.version}/{self.cluster}"

    @property
    def config_file(self) -> str:
        return f"{self.config_dir}/postgresql.conf"

    @property
    def server_binary(self) -> str:
        return f"/usr/lib/postgresql/{self.version}/bin/postgres"

    @property
    def psql_binary(self) -> str:
        # This major's own psql: /usr/bin/psql is Debian's version-picking
        # wrapper, a Perl program that costs more CPU than psql itself.
        return f"/usr/lib/postgresql/{self.version}/bin/psql"

    @property
    def hba_file(self) -> str:
        return f"{self.config_dir}/pg_hba.conf"

    @property
    def dropin_file(self) -> str:
        # conf.d is included at the end of Debian's postgresql.conf, so these
        # values win over the packaged defaults without editing that file.
        return f"{self.config_dir}/conf.d/50-pgfortress.conf"

    @property
    def pid_file(self) -> str:
        # Written by the running server: its pid, start time, port, socket.
        return f"{self.data_dir}/postmaster.pid"

    @property
    def managed_files(self) -> tuple[str, ...]:
        """The files PostgreSQL reads that pgfortress writes, applied together."""
        return (
            self.dropin_file,
            self.hba_file,
            self.server_cert,
            self.server_key,
            self.ca_cert,
        )

    @property
    def log_file(self) -> str:
        # Where pg_ctlcluster sends the server's messages when it starts it.
        return f"/var/log/postgresql/postgresql-{self.version}-{self.cluster}.log"

    @property
    def tls_dir(self) -> str:
        return f"{self.config_dir}/tls"

    @property
    def server_cert(self) -> str:
        return f"{self.tls_dir}/server.crt"

    @property
    def server_key(self) -> str:
        return f"{self.tls_dir}/server.key"

    @property
    def ca_cert(self) -> str:
        return f"{self.tls_dir}/ca.crt"

    @property
    def package(self) -> str:
        return f"postgresql-{self.version}"

    @property
    def service(self) -> str:
        return f"postgresql@{self.version}-{self.cluster}"


# Lists the clusters Debian's postgresql-common manages, one config file a
# line; prints nothing on a host without PostgreSQL.
CLUSTERS_COMMAND = "ls -1d /etc/postgresql/*/*/postgresql.conf 2>/dev/null || true"
_CLUSTER_LINE = re.compile(r"^/etc/postgresql/(\d+)/([^/\s]+)/postgresql\.conf$")


def installed_majors(lines: Iterable[str], cluster: str = "main") -> list[int]:
    """The majors that have a ``cluster`` in what :data:`CLUSTERS_COMMAND` printed."""
    majors = set()
    for line in lines:
        match = _CLUSTER_LINE.match(line.strip())
        if match and match.group(2) == cluster:
            majors.add(int(match.group(1)))
    return sorted(majors)


def layout_for(
    host: str,
    debian_major: int | None,
    configured: int | None,
    installed: Sequence[int] = (),
) -> PostgresLayout:
    """The layout of the major this host runs or is to run.

    ``installed`` holds the majors whose ``main`` cluster is on the host. Without
    ``configured``, a cluster of the release's own major wins; else a single
    other major found on the host is kept (the host was upgraded, its server
    was not); several others need the inventory to choose.
    """
    if configured is not None:
        return PostgresLayout(configured)
    shipped = DEBIAN_POSTGRES_VERSIONS.get(debian_major or 0)
    found = sorted(set(installed))
    if shipped is not None and (not found or shipped in found):
        return PostgresLayout(shipped)
    if len(found) == 1:
        return PostgresLayout(found[0])
    if found:
        majors = " and ".join(str(major) for major in found)
        raise SpecError(
            f"host {host}: postgres_version: the host has clusters of PostgreSQL "
            f"{majors}{_ships(debian_major, shipped)}; set postgres_version to the "
            "major pgfortress should manage"
        )
    known = ", ".join(f"Debian {d}" for d in DEBIAN_POSTGRES_VERSIONS)
    raise SpecError(
        f"host {host}: postgres_version: the host runs Debian {debian_major}, whose "
        f"PostgreSQL version pgfortress does not know ({known} are known); set "
        "postgres_version to the major version its packages provide"
    )


def _ships(debian_major: int | None, shipped: int | None) -> str:
    if shipped is None:
        return ""
    return f", none of them the {shipped} Debian {debian_major} ships"


def release_mismatch(
    host: str, layout: PostgresLayout, debian_major: int | None
) -> str | None:
    """A warning when the host keeps a major its Debian release does not ship."""
    shipped = DEBIAN_POSTGRES_VERSIONS.get(debian_major or 0)
    if shipped is None or shipped == layout.version:
        return None
    return (
        f"host {host}: keeps PostgreSQL {layout.version}, while Debian "
        f"{debian_major} ships {shipped}; once pg_upgradecluster {layout.version} "
        f"{layout.cluster} has made the {shipped} cluster, deploys manage that one "
        "(postgres_version overrides the choice)"
    )
