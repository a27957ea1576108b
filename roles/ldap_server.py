"""Provisioning role: a directory (OpenLDAP's slapd) for people's logins.

Inventory data read (docs/reference/ldap.md has every key):

``ldap_domain``
    The directory's DNS domain; its base is ``dc=`` of each label.
``ldap_listen``
    The address of this host to serve LDAP (StartTLS, port 389) and LDAPS
    (port 636) on; the local socket (``ldapi``) is always served.
``ldap_ca_dir``, ``ldap_dns_names``
    The CA (``pgfortress ca init``) that issues the directory's certificate,
    and extra names for it (the host's name and address are always in it).
``ldap_people``, ``ldap_people_ou``, ``ldap_organization``
    People (``uid``, ``name``, ``password``: ``env:``/``file:`` reference, or
    generated into ``pgfortress_secrets_dir`` as ``ldap/<uid>``) kept under
    ``ou=<ldap_people_ou>``; people not listed there are removed.

What changes on the host: ``slapd`` and ``ldap-utils`` are installed
(preseeded: no question asked); TLS files in ``/etc/ldap/tls``; slapd listens
on ``ldap_listen`` only, refuses simple binds without TLS of 128 bits or more
(``olcSecurity``), speaks TLS 1.2 at least, hashes passwords with Argon2id,
lets people read the directory only once bound, and its administrator is
root over the local socket, without any password. The people OU is made to
hold exactly the inventory's people. Passwords reach the host only as hashes,
in a root-only file that is removed after use.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Generator, Iterable
from io import BytesIO, StringIO
from typing import Any

from pyinfra.api.command import FileUploadCommand
from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.api.facts import FactBase
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Hostname
from pyinfra.operations import apt, files, server, systemd

from pgfortress import tls
from pgfortress.errors import PgFortressError
from pgfortress.plan.ldap import (
    TLS_DIR,
    Entries,
    config_changes,
    parse_ldif,
    people_changes,
    slapd_services,
)
from pgfortress.secrets import Secret, SecretStore, resolve_secret_ref
from pgfortress.spec.ldap import LdapServerSpec, ldap_from_host_data

from .ldap_client import directory_ca, ldap_client
from .operations import STAGING_DIR, secret_file
from .package_lists import refresh_package_lists

__all__ = ["LdapEntries", "ldap_modify", "ldap_server"]

_LDAPSEARCH = "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:///"
_CONFIG_FILTER = (
    "(|(objectClass=olcGlobal)(objectClass=olcMdbConfig)"
    "(objectClass=olcModuleList)(objectClass=olcFrontendConfig))"
)
_CONFIG_ATTRIBUTES = (
    "olcTLSCACertificateFile olcTLSCertificateFile olcTLSCertificateKeyFile "
    "olcTLSProtocolMin olcSecurity olcModuleLoad olcPasswordHash olcAccess "
    "olcRootDN olcRootPW olcSuffix"
)


class LdapEntries(FactBase[Entries | None]):
    """Entries under ``base`` read as root over the local socket; None without slapd.

    An absent base (exit code 32, no such object) reads as no entries.
    """

    def requires_command(self, base: str, search: str, attributes: str) -> str:
        return "ldapsearch"

    def command(self, base: str, search: str, attributes: str) -> str:
        return (
            f"{_LDAPSEARCH} -b '{base}' '{search}' {attributes}; rc=$?; "
            "[ $rc -eq 32 ] && exit 0; exit $rc"
        )

    def process(self, output: Iterable[str]) -> Entries:
        return parse_ldif("\n".join(output))


@operation()
def ldap_modify(ldif: Secret, summary: str) -> Generator[Any, None, None]:
    """Apply an LDIF change as root over the local socket, from a root-only file."""
    if not ldif.reveal():
        host.noop(summary)
        return
    staged = f"{STAGING_DIR}/changes.ldif"
    yield f"install -d -m 0700 -o root -g root {STAGING_DIR}"
    yield FileUploadCommand(
        BytesIO(ldif.reveal().encode()), staged, remote_temp_filename=staged
    )
    yield (
        f"ldapmodify -Q -Y EXTERNAL -H ldapi:/// -f {staged} >/dev/null; "
        f"rc=$?; rm -f {staged}; exit $rc"
    )


@deploy("Directory (slapd) for people's logins")
def ldap_server() -> None:
    spec, issued, ca_pem, passwords = _validated()
    installed = "slapd" in host.get_fact(DebPackages)
    # Read before anything is installed: None means Debian's fresh configuration.
    config, people = _current(spec) if installed else (None, None)
    if not installed:
        _preseed(spec)
        refresh_package_lists(name="Refresh package lists")
    apt.packages(
        name="Install slapd and ldap-utils",
        packages=["slapd", "ldap-utils"],
        no_recommends=True,
    )
    certificate_changed = _tls_files(issued, ca_pem)
    services = files.line(
        name="slapd listens on the named address (StartTLS, LDAPS) and the socket",
        path="/etc/default/slapd",
        line=r"^SLAPD_SERVICES=.*",
        replace=f'SLAPD_SERVICES="{slapd_services(spec.listen)}"',
    )
    ldap_modify(
        name="slapd configuration (TLS, binds only over TLS, Argon2id, access)",
        ldif=Secret(config_changes(spec, config)),
        summary="cn=config already has TLS, olcSecurity, Argon2id and the access rules",
    )
    systemd.service(
        name="slapd running",
        service="slapd",
        running=True,
        # Debian's package enables slapd's init script; systemd reports the unit
        # it generates from it as "generated", which cannot be enabled again.
        restarted=services.changed or certificate_changed,
    )
    plan = people_changes(spec, people, passwords)
    ldap_modify(
        name=f"People under {spec.people_dn}"
        + "".join(f"; {change}" for change in plan.summary),
        ldif=plan.ldif,
        summary=f"{spec.people_dn} holds exactly the inventory's people",
    )
    ldap_client(directory_ca(ca_pem))


def _current(spec: LdapServerSpec) -> tuple[Entries | None, Entries | None]:
    """slapd's managed configuration entries and the people OU, as they are."""
    config = host.get_fact(
        LdapEntries,
        base="cn=config",
        search=_CONFIG_FILTER,
        attributes=_CONFIG_ATTRIBUTES,
    )
    people = host.get_fact(
        LdapEntries,
        base=spec.people_dn,
        search="(objectClass=*)",
        attributes="objectClass uid cn userPassword",
    )
    return config, people


def _validated() -> tuple[
    LdapServerSpec, tls.IssuedCertificate, bytes, dict[str, Secret]
]:
    """Read and check this host's data, before any change, or stop the run."""
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        spec = ldap_from_host_data(host.name, data)
        try:
            ca = tls.load_ca(spec.ca_dir)
        except PgFortressError as error:
            raise type(error)(f"host {host.name}: ldap_ca_dir: {error}") from error
        names = {*spec.dns_names, str(host.get_fact(Hostname))}
        if not _is_ip(host.name):
            names.add(host.name)
        issued = tls.ensure_server_certificate(
            ca,
            spec.ca_dir / "issued",
            host.name,
            dns_names=sorted(names),
            ip_addresses=[spec.listen],
        )
        store = SecretStore(spec.secrets_dir)
        passwords = {
            person.uid: resolve_secret_ref(person.password, store, f"ldap/{person.uid}")
            for person in spec.people
        }
    except PgFortressError as error:
        raise DeployError(str(error)) from error
    return spec, issued, ca.cert_pem(), passwords


def _preseed(spec: LdapServerSpec) -> None:
    """Answer slapd's install questions; its admin password is random and dropped.

    The deploy then gives the directory root over the local socket as its
    administrator and removes that password.
    """
    throwaway = secrets.token_urlsafe(32)
    answers = "".join(
        f"slapd {question}\n"
        for question in (
            f"slapd/domain string {spec.domain}",
            f"shared/organization string {spec.organization}",
            f"slapd/password1 password {throwaway}",
            f"slapd/password2 password {throwaway}",
            "slapd/purge_database boolean false",
            "slapd/move_old_database boolean true",
        )
    )
    staged = f"{STAGING_DIR}/slapd.preseed"
    secret_file(
        name="Answers for slapd's installation (from a root-only file)",
        dest=staged,
        content=Secret(answers),
        user="root",
        group="root",
        mode="600",
    )
    server.shell(
        name="Load slapd's answers into debconf",
        commands=[f"debconf-set-selections {staged}; rc=$?; rm -f {staged}; exit $rc"],
    )


def _tls_files(issued: tls.IssuedCertificate, ca_pem: bytes) -> bool:
    """Certificate chain, key and CA for slapd; whether chain or key changes."""
    files.directory(
        name="slapd TLS directory",
        path=TLS_DIR,
        user="root",
        group="openldap",
        mode="750",
    )
    chain = files.put(
        name="slapd certificate chain",
        src=StringIO(issued.chain_pem.decode()),
        dest=f"{TLS_DIR}/server.crt",
        user="root",
        group="openldap",
        mode="644",
    )
    files.put(
        name="CA certificate for slapd",
        src=StringIO(ca_pem.decode()),
        dest=f"{TLS_DIR}/ca.crt",
        user="root",
        group="openldap",
        mode="644",
    )
    key = secret_file(
        name="slapd private key",
        dest=f"{TLS_DIR}/server.key",
        content=issued.key_pem,
        user="root",
        group="openldap",
        mode="640",
    )
    return bool(chain.changed or key.changed)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
