"""Provisioning role: a hardened PostgreSQL server on a Debian host.

Inventory data read (see docs/reference/inventory.md for every field):

``postgres_listen``
    Interfaces or addresses of the host to listen on; loopback is always added.
``postgres_socket``
    ``directory``, ``group`` (default ``pgsocket``) and ``mode`` (``0770``).
``postgres_tls``
    ``ca_dir`` of a CA made with ``pgfortress ca init``; optionally your own
    ``cert_file``/``key_file``, ``dns_names`` and ``min_protocol``.
``postgres_hba``
    The client-authentication policy, one mapping per rule.
``ldap_client_ca_file``
    With ``ldap`` rules: the CA of the directory's certificate (default: the
    CA of ``postgres_tls``), written with ``/etc/ldap/ldap.conf``
    (``TLS_REQCERT demand``, see docs/reference/ldap.md).
``postgres_logging``, ``postgres_settings``, ``postgres_port``, ``postgres_version``
``postgres_probe_role`` and ``pgfortress_secrets_dir``
    An optional LOGIN database role with no privileges, to prove clients get in.

What changes on the host: the ``postgresql-<version>`` package is installed;
a ``pgsocket`` system group is created and the postgres user joins it; the CA
is added to the system trust store. The server certificate, key and CA
certificate (``/etc/postgresql/<version>/main/tls/``),
``conf.d/50-pgfortress.conf`` and ``pg_hba.conf`` change together: each one
that differs is uploaded next to its target as ``<file>.pgf-candidate``, then
swapped in, checked by PostgreSQL, applied with a reload (a restart when a
changed setting needs one) and verified, or rolled back; the replaced version
stays as ``<file>.pgf-previous`` and a rolled-back one as
``<file>.pgf-rejected``. A stopped server is started, with the files it last
ran with, before anything changes. All input is validated before the first
change, on every host. docs/explanation/applying-changes.md has the details.

Legal but risky ``postgres_hba`` rules (a network wider than /16 or /48, ``all``
databases for ``all`` users over TCP) are printed as one warning line each and
do not stop the run; ``acknowledge`` on the rule silences them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyinfra import logger
from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.context import state as run_state
from pyinfra.facts.server import Hostname
from pyinfra.operations import apt

from pgfortress import scram, tls
from pgfortress.errors import PgFortressError, SecretStoreError, SpecError
from pgfortress.plan import PostgresLayout, layout_for, render_hba, render_settings
from pgfortress.plan.apply import FileState, apply_plan, needs_candidate
from pgfortress.plan.hba import hba_lines, lockout_problem, uses_ldap
from pgfortress.plan.layout import release_mismatch
from pgfortress.plan.listen import LOOPBACK, resolve_listen
from pgfortress.plan.probe import password_matches, probe_script
from pgfortress.secrets import Secret, SecretStore, resolve_secret_ref
from pgfortress.spec import PostgresHostSpec, from_host_data
from pgfortress.spec.hba_policy import policy_warnings
from pgfortress.spec.postgres import check_settings_for

from .facts import (
    ConfigFileState,
    DebPackagesInstalled,
    DirectoryOwnerMode,
    FactRead,
    GroupMember,
    HostRelease,
    InterfaceAddresses,
    PostgresClusters,
    PostgresServerState,
    ServiceUnitState,
    prefetch,
    prepared_fact,
)
from .ldap_client import directory_ca, ldap_client
from .operations import (
    already_done,
    apply_config,
    directory,
    group_member,
    plain_file,
    psql_secret_script,
    service_running,
    stage_config,
)
from .package_lists import refresh_package_lists

__all__ = [
    "ConfigFile",
    "ServerConfig",
    "apply_files",
    "host_layout",
    "postgres_server",
    "server_config",
]

TRUST_STORE_CA = "/usr/local/share/ca-certificates/pgfortress-ca.crt"


@dataclass(frozen=True)
class ConfigFile:
    """One file of the server's configuration, as it must be on the host."""

    label: str
    dest: str
    content: str | Secret
    user: str = "postgres"
    group: str = "postgres"
    mode: str = "644"


@dataclass(frozen=True)
class ServerConfig:
    """One host's validated input and what the role derives from it."""

    spec: PostgresHostSpec
    layout: PostgresLayout
    listen: list[str]
    issued: tls.IssuedCertificate
    ca_pem: bytes
    probe: Secret | None

    def files(self) -> list[ConfigFile]:
        """The files PostgreSQL reads, applied together by :func:`apply_files`."""
        layout, ca = self.layout, self.ca_pem.decode()
        return [
            ConfigFile(
                "Hardened settings drop-in",
                layout.dropin_file,
                render_settings(self.spec, layout, self.listen),
            ),
            ConfigFile(
                "Client authentication policy (pg_hba.conf)",
                layout.hba_file,
                render_hba(self.spec.hba),
                mode="640",
            ),
            ConfigFile(
                "Server certificate chain (leaf first)",
                layout.server_cert,
                self.issued.chain_pem.decode(),
                user="root",
            ),
            ConfigFile(
                "Server private key", layout.server_key, self.issued.key_pem, mode="600"
            ),
            ConfigFile(
                "CA certificate for client certificates",
                layout.ca_cert,
                ca,
                user="root",
            ),
        ]


@deploy("Harden PostgreSQL server")
def postgres_server() -> None:
    config = server_config()
    # The server's state, in one round trip, before any operation uses it.
    wanted = config.files()
    reads: list[FactRead] = [(ConfigFileState, {"path": f.dest}) for f in wanted]
    reads.append((DebPackagesInstalled, {"packages": _packages(config.layout)}))
    reads.append((PostgresServerState, _server_state(config)))
    reads.append((ConfigFileState, {"path": TRUST_STORE_CA}))
    member = {"user": "postgres", "group": config.spec.socket.group}
    reads.append((GroupMember, member))
    reads.append((DirectoryOwnerMode, {"path": config.layout.tls_dir}))
    reads.append((ServiceUnitState, {"unit": _unit(config.layout)}))
    prefetch(*reads)
    _install(config.layout)
    group_member(
        name="Socket group for local clients",
        user="postgres",
        group=config.spec.socket.group,
        membership=prepared_fact(GroupMember, **member),
    )
    directory(
        name="TLS directory",
        path=config.layout.tls_dir,
        user="root",
        group="postgres",
        mode="750",
        live=prepared_fact(DirectoryOwnerMode, path=config.layout.tls_dir),
    )
    _trust_store(config.ca_pem)
    if uses_ldap(config.spec.hba):
        # Before pg_hba.conf: ldap rules go live with the directory's CA in place.
        ldap_client(directory_ca(config.ca_pem))
    apply_files(config, wanted)
    if config.spec.probe_role is not None and config.probe is not None:
        _probe_role(config, config.probe)


def server_config() -> ServerConfig:
    """Read and validate this host's data; nothing on the host changes.

    Raises pyinfra's ``DeployError`` with a message naming the host and the
    key, so a bad inventory stops the run before the first change.
    """
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        spec = from_host_data(host.name, data)
        lockout = lockout_problem(hba_lines(spec.hba))
        if lockout is not None:
            raise SpecError(f"host {host.name}: postgres_hba: {lockout}")
        layout = host_layout(spec)
        interfaces: dict[str, list[str]] = prepared_fact(InterfaceAddresses)
        listen = resolve_listen(host.name, spec.listen, interfaces)
        dns_names, ips = _certificate_names(spec, listen)
        ca, issued = tls.host_certificate(
            host.name, spec.tls, dns_names=dns_names, ip_addresses=ips
        )
        try:
            probe = _probe_password(spec)
        except SecretStoreError as error:
            raise SecretStoreError(f"host {host.name}: {error}") from error
    except PgFortressError as error:
        # pyinfra prints its own errors as one clean line, before any change.
        raise DeployError(str(error)) from error
    for warning in policy_warnings(spec.hba):
        host.log(
            f"pgfortress: warning: host {host.name}: postgres_hba[{warning.position}]: "
            f"{warning.risk} "
            f"(acknowledge: [{warning.kind}] on the rule silences this)",
            log_func=logger.warning,
        )
    return ServerConfig(spec, layout, listen, issued, ca.cert_pem(), probe)


def apply_files(config: ServerConfig, wanted: Sequence[ConfigFile]) -> None:
    """Stage ``wanted`` as candidates, then swap, check, apply and verify them.

    Only files whose text, owner or mode differ are staged; nothing reaches
    the live names until PostgreSQL accepts the candidates, and a failed
    check after applying puts the previous files back (see
    docs/explanation/applying-changes.md). The server is started first, if
    it is stopped, with the files it last ran with: it must be running to
    check the new ones.
    """
    # Every file's state, read before any operation runs (in one round trip
    # with the server's other facts, see postgres_server()).
    prefetch(*((ConfigFileState, {"path": f.dest}) for f in wanted))
    live = {f.dest: prepared_fact(ConfigFileState, path=f.dest) for f in wanted}
    staged = [
        stage_config(
            name=f.label,
            dest=f.dest,
            content=f.content,
            user=f.user,
            group=f.group,
            mode=f.mode,
            live=live[f.dest],
        )
        for f in wanted
    ]
    if run_state.config.DIFF:
        # Asking an operation whether it changes anything runs it while
        # preparing, and stage_config shows its diff then: a --dry --diff run,
        # which executes nothing, shows what each file would become.
        for op in staged:
            _ = op.changed
    layout, spec = config.layout, config.spec
    unit = _unit(layout)
    service = prepared_fact(ServiceUnitState, unit=unit)
    service_running(
        name="PostgreSQL running and enabled",
        service=unit,
        running=service.running,
        enabled=service.enabled,
    )
    apply_config(
        name="Apply configuration (check, reload or restart, verify)",
        plan=apply_plan(
            host.name, layout, spec.socket.directory, spec.port, config.listen
        ),
        changed=any(_differs(f, live[f.dest]) for f in wanted),
        stale=_running_config_is_stale(config),
    )


def _differs(wanted: ConfigFile, live: FileState) -> bool:
    """Whether staging ``wanted`` changes anything: a candidate to upload, or
    one left by an earlier run to remove (what :func:`stage_config` does)."""
    content = wanted.content
    text = content.reveal() if isinstance(content, Secret) else content
    return live.candidate or needs_candidate(
        live, text.encode(), wanted.user, wanted.group, wanted.mode
    )


def _running_config_is_stale(config: ServerConfig) -> str | None:
    """Why the running server lags its files (an earlier run failed), if it does."""
    state = prepared_fact(PostgresServerState, **_server_state(config)).config
    if state is None:
        return None
    if state.pending_restart:
        return f"{state.pending_restart} setting(s) wait for a restart"
    if state.newest > state.loaded_at:
        return "configuration files are newer than the running configuration"
    return None


def _unit(layout: PostgresLayout) -> str:
    """The server's systemd unit, named as pyinfra's systemd facts name it."""
    return f"{layout.service}.service"


def _stale_paths(layout: PostgresLayout) -> list[str]:
    """The files whose change the running server must have read."""
    return [layout.dropin_file, layout.hba_file, layout.server_cert, layout.server_key]


def _server_state(config: ServerConfig) -> dict[str, Any]:
    """The arguments of :class:`PostgresServerState` for this server: the
    probe role's state is read with the rest when the role is wanted."""
    layout, probe = config.layout, config.spec.probe_role
    return {
        "paths": _stale_paths(layout),
        "psql": layout.psql_binary,
        "probe_role": (
            probe.name if probe is not None and config.probe is not None else None
        ),
    }


def host_layout(spec: PostgresHostSpec) -> PostgresLayout:
    """The layout of the major this host runs, from the inventory or its facts.

    ``postgres_version`` wins; else a ``main`` cluster already on the host;
    else the major the host's Debian release ships. ``postgres_settings`` the
    chosen major does not have are refused here, before any change.
    """
    # With what server_config() needs to know of the host, in one round trip;
    # each fact is read once per host (prepared_fact()), whichever role asks.
    prefetch(
        (HostRelease, {}),
        (PostgresClusters, {}),
        (InterfaceAddresses, {}),
        (Hostname, {}),
    )
    distro = prepared_fact(HostRelease)
    if distro.id != "debian":
        raise SpecError(
            f"host {host.name}: runs {distro.name or 'an unknown system'}; "
            "pgfortress supports Debian"
        )
    release = distro.major
    installed: list[int] = prepared_fact(PostgresClusters)
    layout = layout_for(host.name, release, spec.version, installed)
    check_settings_for(spec, layout.version)
    mismatch = release_mismatch(host.name, layout, release)
    if mismatch is not None and spec.version is None:
        host.log(f"pgfortress: warning: {mismatch}", log_func=logger.warning)
    return layout


def _certificate_names(
    spec: PostgresHostSpec, listen: list[str]
) -> tuple[list[str], list[str]]:
    """The DNS names and addresses the server certificate must carry."""
    ips = sorted({a for a in listen if a not in LOOPBACK and a != "*"})
    names = {*spec.tls.dns_names, str(prepared_fact(Hostname))}
    if not _is_ip(host.name):
        names.add(host.name)
    return sorted(names), ips


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _probe_password(spec: PostgresHostSpec) -> Secret | None:
    if spec.probe_role is None or spec.secrets_dir is None:
        return None
    store = SecretStore(spec.secrets_dir)
    name = f"{host.name}/{spec.probe_role.name}"
    return resolve_secret_ref(spec.probe_role.password, store, name)


def _packages(layout: PostgresLayout) -> list[str]:
    """The packages the server needs: the major's and psql's wrapper."""
    return [layout.package, "postgresql-client-common"]


def _install(layout: PostgresLayout) -> None:
    packages = _packages(layout)
    installed = prepared_fact(DebPackagesInstalled, packages=packages)
    name = f"Install {layout.package}"
    if all(p in installed for p in packages):
        # Read while preparing already: apt would only read the list again.
        already_done(name=name, reason=f"{' and '.join(packages)} are installed")
        return
    if layout.package not in installed:
        refresh_package_lists(name="Refresh package lists")
    apt.packages(name=name, packages=packages, no_recommends=True)


def _trust_store(ca_pem: bytes) -> None:
    plain_file(
        name="CA certificate in the system trust store",
        dest=TRUST_STORE_CA,
        content=ca_pem.decode(),
        user="root",
        group="root",
        mode="644",
        live=prepared_fact(ConfigFileState, path=TRUST_STORE_CA),
        then="update-ca-certificates",
    )


def _probe_role(config: ServerConfig, password: Secret) -> None:
    state = prepared_fact(PostgresServerState, **_server_state(config)).probe
    assert config.spec.probe_role is not None
    role = config.spec.probe_role.name
    if state is None:
        needed, reason = True, ""
    else:
        matches = state.can_login and password_matches(state, password)
        needed, reason = not matches, f"database role {role} exists with its password"
    # A verifier costs a key derivation: made only when it will be sent.
    script = probe_script(role, scram.make_verifier(password)) if needed else ""
    psql_secret_script(
        name=f"Probe database role {role}",
        script=Secret(script),
        needed=needed,
        reason=reason,
        psql=config.layout.psql_binary,
    )
