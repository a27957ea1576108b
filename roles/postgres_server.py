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
``postgres_logging``, ``postgres_settings``, ``postgres_port``, ``postgres_version``
``postgres_probe_role`` and ``pgfortress_secrets_dir``
    An optional LOGIN database role with no privileges, to prove clients get in.

What changes on the host: the ``postgresql-<version>`` package is installed;
a ``pgsocket`` system group is created and the postgres user joins it; the
server certificate, key and CA certificate go to
``/etc/postgresql/<version>/main/tls/``; the CA is added to the system trust
store; ``conf.d/50-pgfortress.conf`` and ``pg_hba.conf`` are written; the
server is reloaded, or restarted when a changed setting needs it. All input is
validated before the first change, on every host.
"""

from __future__ import annotations

import ipaddress
from io import StringIO
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Hostname, LinuxDistribution
from pyinfra.operations import apt, files, server, systemd

from pgfortress import scram, tls
from pgfortress.errors import PgFortressError, SecretStoreError, TLSError
from pgfortress.plan import PostgresLayout, layout_for, render_hba, render_settings
from pgfortress.plan.listen import LOOPBACK, resolve_listen
from pgfortress.plan.probe import password_matches, probe_script
from pgfortress.secrets import Secret, SecretStore, resolve_secret_ref
from pgfortress.spec import PostgresHostSpec, from_host_data

from .facts import InterfaceAddresses, PostgresConfigState, PostgresProbeRole
from .operations import group_member, psql_secret_script, secret_file, settle_service

__all__ = ["postgres_server"]

TRUST_STORE_CA = "/usr/local/share/ca-certificates/pgfortress-ca.crt"


@deploy("Harden PostgreSQL server")
def postgres_server() -> None:
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        spec = from_host_data(host.name, data)
        layout = _layout(spec)
        interfaces: dict[str, list[str]] = host.get_fact(InterfaceAddresses)
        listen = resolve_listen(host.name, spec.listen, interfaces)
        try:
            ca = tls.load_ca(spec.tls.ca_dir)
            issued = _certificate(spec, ca, listen)
        except TLSError as error:
            raise TLSError(f"host {host.name}: postgres_tls: {error}") from error
        try:
            probe = _probe_password(spec)
        except SecretStoreError as error:
            raise SecretStoreError(f"host {host.name}: {error}") from error
    except PgFortressError as error:
        # pyinfra prints its own errors as one clean line, before any change.
        raise DeployError(str(error)) from error

    _install(layout)
    group_member(
        name="Socket group for local clients", user="postgres", group=spec.socket.group
    )
    tls_changed = _tls_files(layout, issued, ca.cert_pem())
    dropin = files.put(
        name="Hardened settings drop-in",
        src=StringIO(render_settings(spec, layout, listen)),
        dest=layout.dropin_file,
        user="postgres",
        group="postgres",
        mode="644",
    )
    hba = files.put(
        name="Client authentication policy (pg_hba.conf)",
        src=StringIO(render_hba(spec.hba)),
        dest=layout.hba_file,
        user="postgres",
        group="postgres",
        mode="640",
    )
    systemd.service(
        name="PostgreSQL running and enabled",
        service=layout.service,
        running=True,
        enabled=True,
    )
    settle_service(
        name="Apply configuration (reload, or restart when needed)",
        service=layout.service,
        changed=dropin.changed or hba.changed or tls_changed,
        stale=_running_config_is_stale(layout),
    )
    if spec.probe_role is not None and probe is not None:
        _probe_role(spec.probe_role.name, probe)


def _running_config_is_stale(layout: PostgresLayout) -> str | None:
    """Why the running server lags its files (an earlier run failed), if it does."""
    paths = [layout.dropin_file, layout.hba_file, layout.server_cert, layout.server_key]
    state = host.get_fact(PostgresConfigState, paths=paths)
    if state is None:
        return None
    if state["pending_restart"]:
        return f"{state['pending_restart']} setting(s) wait for a restart"
    if state["newest"] > state["loaded_at"]:
        return "configuration files are newer than the running configuration"
    return None


def _layout(spec: PostgresHostSpec) -> PostgresLayout:
    distro = host.get_fact(LinuxDistribution)
    if distro.get("name") != "Debian":
        raise DeployError(
            f"host {host.name}: runs {distro.get('name')}; pgfortress supports Debian"
        )
    return layout_for(host.name, distro.get("major"), spec.version)


def _certificate(
    spec: PostgresHostSpec, ca: tls.CertificateAuthority, listen: list[str]
) -> tls.IssuedCertificate:
    ips = sorted({a for a in listen if a not in LOOPBACK and a != "*"})
    names = {*spec.tls.dns_names, str(host.get_fact(Hostname))}
    if not _is_ip(host.name):
        names.add(host.name)
    if spec.tls.cert_file is not None and spec.tls.key_file is not None:
        return tls.load_certificate_pair(
            spec.tls.cert_file,
            spec.tls.key_file,
            dns_names=sorted(names),
            ip_addresses=ips,
        )
    return tls.ensure_server_certificate(
        ca,
        spec.tls.issued_dir,
        host.name,
        dns_names=sorted(names),
        ip_addresses=ips,
    )


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


def _install(layout: PostgresLayout) -> None:
    installed = host.get_fact(DebPackages)
    if layout.package not in installed:
        apt.update(name="Refresh package lists")
    apt.packages(
        name=f"Install {layout.package}",
        packages=[layout.package, "postgresql-client-common"],
        no_recommends=True,
    )


def _tls_files(
    layout: PostgresLayout, issued: tls.IssuedCertificate, ca_pem: bytes
) -> bool:
    files.directory(
        name="TLS directory",
        path=layout.tls_dir,
        user="root",
        group="postgres",
        mode="750",
    )
    chain = files.put(
        name="Server certificate chain (leaf first)",
        src=StringIO(issued.chain_pem.decode()),
        dest=layout.server_cert,
        user="root",
        group="postgres",
        mode="644",
    )
    key = secret_file(
        name="Server private key",
        dest=layout.server_key,
        content=issued.key_pem,
        user="postgres",
        group="postgres",
        mode="600",
    )
    ca = files.put(
        name="CA certificate for client certificates",
        src=StringIO(ca_pem.decode()),
        dest=layout.ca_cert,
        user="root",
        group="postgres",
        mode="644",
    )
    trusted = files.put(
        name="CA certificate in the system trust store",
        src=StringIO(ca_pem.decode()),
        dest=TRUST_STORE_CA,
        user="root",
        group="root",
        mode="644",
    )
    server.shell(
        name="Refresh the system trust store",
        commands=["update-ca-certificates"],
        _if=trusted.did_change,
    )
    return bool(chain.changed or key.changed or ca.changed)


def _probe_role(role: str, password: Secret) -> None:
    state = host.get_fact(PostgresProbeRole, role=role)
    if state is None:
        needed, reason = True, ""
    else:
        matches = state.can_login and password_matches(state, password)
        needed, reason = not matches, f"database role {role} exists with its password"
    verifier = scram.make_verifier(password)
    psql_secret_script(
        name=f"Probe database role {role}",
        script=Secret(probe_script(role, verifier)),
        needed=needed,
        reason=reason,
    )
