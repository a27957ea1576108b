"""Where Debian's PostgreSQL packages put things, per major version."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError

__all__ = ["DEBIAN_POSTGRES_VERSIONS", "PostgresLayout", "layout_for"]

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


def layout_for(
    host: str, debian_major: int | None, configured: int | None
) -> PostgresLayout:
    """The layout for the configured version, or the one the release ships."""
    if configured is not None:
        return PostgresLayout(configured)
    if debian_major in DEBIAN_POSTGRES_VERSIONS:
        return PostgresLayout(DEBIAN_POSTGRES_VERSIONS[debian_major])
    known = ", ".join(f"Debian {d}" for d in DEBIAN_POSTGRES_VERSIONS)
    raise SpecError(
        f"host {host}: postgres_version: the host runs Debian {debian_major}, whose "
        f"PostgreSQL version pgfortress does not know ({known} are known); set "
        "postgres_version to the major version its packages provide"
    )
