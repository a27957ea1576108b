"""Plan a directory (slapd) and its clients: LDIF changes and ldap.conf, no host.

slapd keeps its configuration in the ``cn=config`` tree; the deploy reads the
entries it manages (as LDIF, through ``ldapsearch`` over the local socket)
and :func:`config_changes` turns the difference into one LDIF modify script.
People are entries under the people OU; :func:`people_changes` adds, updates
and removes them so the OU holds exactly the inventory's people. Passwords
are stored as Argon2id hashes (slapd's ``argon2`` module) and are compared by
verifying the wanted password against the stored hash, so a second run
changes nothing.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from ..secrets import Secret
from ..spec.ldap import LdapServerSpec
from ._templates import render

__all__ = [
    "CLIENT_CA_FILE",
    "CLIENT_CONF",
    "ROOT_DN",
    "TLS_DIR",
    "Entries",
    "LdifEntry",
    "config_changes",
    "hash_password",
    "parse_ldif",
    "password_matches",
    "people_changes",
    "render_client_conf",
    "slapd_services",
]

CLIENT_CONF = "/etc/ldap/ldap.conf"
CLIENT_CA_FILE = "/etc/ldap/pgfortress-directory-ca.crt"
TLS_DIR = "/etc/ldap/tls"
# root on the directory host, through the local socket (SASL EXTERNAL).
ROOT_DN = "gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth"
CONFIG_DN = "cn=config"
MODULES_DN = "cn=module{0},cn=config"
FRONTEND_DN = "olcDatabase={-1}frontend,cn=config"
HASH_SCHEME = "{ARGON2}"
# OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane.
_MEMORY_KIB, _PASSES, _LANES, _LENGTH = 19456, 2, 1, 32
# A stored hash asking for more than this is not verified here (it is not ours).
_MAX_MEMORY_KIB = 1 << 20
_MAX_VERIFY_PASSES = 10
_ORDER_PREFIX = re.compile(r"^\{-?\d+\}")

Entries = dict[str, dict[str, list[str]]]


@dataclass(frozen=True)
class LdifEntry:
    """One entry read back from ``ldapsearch -LLL``."""

    dn: str
    attributes: dict[str, list[str]]


def render_client_conf(ca_file: str = CLIENT_CA_FILE) -> str:
    """OpenLDAP's client configuration: verify the directory against ``ca_file``."""
    return render("ldap/ldap.conf.j2", ca_file=ca_file)


def slapd_services(listen: str) -> str:
    """The value of SLAPD_SERVICES: StartTLS and ldaps on one address, the socket."""
    host = f"[{listen}]" if ":" in listen else listen
    return f"ldap://{host}/ ldaps://{host}/ ldapi:///"


def parse_ldif(text: str) -> Entries:
    """Entries of ``ldapsearch -LLL -o ldif-wrap=no`` output, by DN.

    Folded lines (a leading space) are joined and ``attr:: base64`` values
    decoded, so the result does not depend on ldapsearch's wrapping.
    """
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    entries: Entries = {}
    current: dict[str, list[str]] | None = None
    for line in lines:
        if not line or line.startswith("#"):
            current = None if not line else current
            continue
        name, _, value = line.partition(":")
        if value.startswith(":"):
            value = base64.b64decode(value[1:].strip()).decode("utf-8", "replace")
        else:
            value = value.strip()
        if name == "dn":
            current = entries.setdefault(value, {})
        elif current is not None:
            current.setdefault(name, []).append(value)
    return entries


def _unordered(values: Sequence[str]) -> list[str]:
    return [_ORDER_PREFIX.sub("", value) for value in values]


def wanted_config(
    spec: LdapServerSpec, database_dn: str
) -> dict[str, dict[str, list[str]]]:
    """The attributes pgfortress sets, per entry, in the order they are applied."""
    return {
        CONFIG_DN: {
            "olcTLSCACertificateFile": [f"{TLS_DIR}/ca.crt"],
            "olcTLSCertificateFile": [f"{TLS_DIR}/server.crt"],
            "olcTLSCertificateKeyFile": [f"{TLS_DIR}/server.key"],
            "olcTLSProtocolMin": ["3.3"],
            # A simple bind (a password) needs TLS of at least 128 bits.
            "olcSecurity": ["simple_bind=128"],
        },
        FRONTEND_DN: {"olcPasswordHash": [HASH_SCHEME]},
        database_dn: {
            "olcAccess": [
                "to attrs=userPassword by self =xw by anonymous auth by * none",
                f"to dn.subtree={spec.people_dn} by self read by users read by * none",
                "to * by users read by * none",
            ],
            # The directory's administrator is root over the local socket, and
            # has no password.
            "olcRootDN": [ROOT_DN],
            "olcRootPW": [],
        },
    }


def database_dn(current: Entries, suffix: str) -> str | None:
    """The cn=config entry of the database holding ``suffix``, if there is one."""
    for dn, attributes in current.items():
        if suffix in attributes.get("olcSuffix", []):
            return dn
    return None


def config_changes(spec: LdapServerSpec, current: Entries | None) -> str:
    """LDIF modifying cn=config into the wanted state; empty when it already is.

    ``current`` is None when slapd was not installed yet when the host was
    read: the plan then starts from the configuration Debian's package
    creates (the argon2 module not loaded, the mdb database as ``{1}mdb``).
    """
    state: Entries = current if current is not None else {}
    dn = database_dn(state, spec.base_dn) or "olcDatabase={1}mdb,cn=config"
    blocks = []
    modules = _unordered(state.get(MODULES_DN, {}).get("olcModuleLoad", []))
    if "argon2" not in modules:
        blocks.append(
            f"dn: {MODULES_DN}\nchangetype: modify\nadd: olcModuleLoad\n"
            "olcModuleLoad: argon2\n"
        )
    for entry, attributes in wanted_config(spec, dn).items():
        have = state.get(entry, {})
        changes = [
            _replace(name, values)
            for name, values in attributes.items()
            if current is None or _unordered(have.get(name, [])) != values
        ]
        if changes:
            blocks.append(f"dn: {entry}\nchangetype: modify\n" + "-\n".join(changes))
    return "\n".join(blocks)


def _replace(name: str, values: Sequence[str]) -> str:
    return f"replace: {name}\n" + "".join(f"{name}: {value}\n" for value in values)


def hash_password(password: Secret) -> Secret:
    """A fresh Argon2id hash in slapd's ``{ARGON2}`` form (a PHC string)."""
    salt = os.urandom(16)
    kdf = Argon2id(
        salt=salt,
        length=_LENGTH,
        iterations=_PASSES,
        lanes=_LANES,
        memory_cost=_MEMORY_KIB,
    )
    digest = kdf.derive(password.reveal().encode())
    params = f"m={_MEMORY_KIB},t={_PASSES},p={_LANES}"
    phc = f"$argon2id$v=19${params}${_b64(salt)}${_b64(digest)}"
    return Secret(HASH_SCHEME + phc)


def password_matches(stored: str, password: Secret) -> bool:
    """Whether ``stored`` (a userPassword value) is an Argon2id hash of ``password``."""
    parts = stored.removeprefix(HASH_SCHEME).split("$")
    if not stored.startswith(HASH_SCHEME) or len(parts) != 6:
        return False
    _, variant, version, params, salt, digest = parts
    costs = dict(item.partition("=")[::2] for item in params.split(","))
    try:
        if (variant, version, sorted(costs)) != ("argon2id", "v=19", ["m", "p", "t"]):
            return False
        memory, passes, lanes = (int(costs[key]) for key in ("m", "t", "p"))
        if memory > _MAX_MEMORY_KIB or passes > _MAX_VERIFY_PASSES:
            return False
        expected = _unb64(digest)
        kdf = Argon2id(
            salt=_unb64(salt),
            length=len(expected),
            iterations=passes,
            lanes=lanes,
            memory_cost=memory,
        )
        kdf.verify(password.reveal().encode(), expected)
    except (InvalidKey, ValueError):
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@dataclass(frozen=True)
class PeopleChanges:
    """LDIF for the people OU (holds password hashes) and what it changes."""

    ldif: Secret
    summary: list[str]


def people_changes(
    spec: LdapServerSpec, current: Entries | None, passwords: Mapping[str, Secret]
) -> PeopleChanges:
    """Add, update and remove people so the OU holds exactly ``spec.people``."""
    state = current or {}
    blocks, summary = [], []
    if spec.people_dn not in state:
        blocks.append(
            f"dn: {spec.people_dn}\nchangetype: add\nobjectClass: organizationalUnit\n"
            f"ou: {spec.people_ou}\n"
        )
        summary.append(f"add {spec.people_dn}")
    wanted = {spec.person_dn(person.uid): person for person in spec.people}
    for dn, person in wanted.items():
        have = state.get(dn)
        password = passwords[person.uid]
        if have is None:
            blocks.append(
                f"dn: {dn}\nchangetype: add\nobjectClass: inetOrgPerson\n"
                f"uid: {person.uid}\ncn: {person.name}\nsn: {person.name.split()[-1]}\n"
                f"userPassword: {hash_password(password).reveal()}\n"
            )
            summary.append(f"add person {person.uid}")
            continue
        changes = []
        if have.get("cn") != [person.name]:
            changes.append(_replace("cn", [person.name]))
        stored = have.get("userPassword", [])
        if len(stored) != 1 or not password_matches(stored[0], password):
            changes.append(_replace("userPassword", [hash_password(password).reveal()]))
        if changes:
            blocks.append(f"dn: {dn}\nchangetype: modify\n" + "-\n".join(changes))
            summary.append(f"update person {person.uid}")
    for dn, attributes in state.items():
        if dn not in wanted and "inetOrgPerson" in attributes.get("objectClass", []):
            blocks.append(f"dn: {dn}\nchangetype: delete\n")
            summary.append(f"remove person {attributes.get('uid', [dn])[0]}")
    return PeopleChanges(Secret("\n".join(blocks)), summary)
