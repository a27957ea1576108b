"""Options of a pg_hba ``ldap`` rule: people log in with their directory password.

PostgreSQL receives the person's password in the clear (inside the client's
TLS session) and tries a simple bind with it against the directory. So an
``ldap`` rule is accepted only on ``hostssl`` (checked in :mod:`.hba`), and
the connection to the directory must be TLS too: ``ldapscheme=ldaps`` or
``ldaptls=1`` (StartTLS). The directory's certificate is verified through
OpenLDAP's client configuration, which the deploy writes (see
docs/reference/ldap.md).

Only simple-bind mode is supported: the bind DN is ``ldapprefix`` + the
database role name + ``ldapsuffix``. Search+bind needs a search account whose
password would sit in pg_hba.conf, readable in the server's catalog views and
in deploy diffs, so its options are refused with that reason.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

__all__ = ["LDAP_OPTIONS", "ldap_options_problem", "option_value_problem"]

LDAP_OPTIONS = frozenset(
    {"ldapserver", "ldapport", "ldapscheme", "ldaptls", "ldapprefix", "ldapsuffix"}
)
_SEARCH_BIND = frozenset(
    {"ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute"}
    | {"ldapsearchfilter"}
)
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}$")
_MAX_VALUE = 512


def option_value_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be written safely as a pg_hba option value, if so.

    pg_hba.conf has no escape for a double quote inside a quoted value, and a
    line break or other control character would end or split the rule.
    """
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return (
            f"options: {name}: the value contains a line break or another control "
            "character; write it on one line"
        )
    if '"' in value:
        return (
            f"options: {name}: the value contains a double quote, which pg_hba.conf "
            "cannot carry inside an option; remove it"
        )
    if value != value.strip():
        return (
            f"options: {name}={value!r} starts or ends with whitespace; remove it "
            "(PostgreSQL would keep it as part of the value)"
        )
    if not value:
        return f"options: {name} is empty; give a value or remove the option"
    if len(value) > _MAX_VALUE:
        return f"options: {name} is longer than {_MAX_VALUE} characters"
    return None


def ldap_options_problem(options: Mapping[str, str]) -> str | None:
    """Why the options of an ``ldap`` rule are not accepted, or None if they are."""
    for check in (_unknown, _values, _server, _port, _transport, _bind_dn):
        problem = check(options)
        if problem is not None:
            return problem
    return None


def _unknown(options: Mapping[str, str]) -> str | None:
    for name in options:
        if name in _SEARCH_BIND:
            return (
                f"options: {name!r} belongs to LDAP search+bind mode, which "
                "pgfortress does not render: its search account's password would "
                "stand in pg_hba.conf; use simple bind with ldapprefix/ldapsuffix "
                "(the bind DN is ldapprefix + database role name + ldapsuffix)"
            )
        if name == "ldapurl":
            return (
                "options: 'ldapurl' is not accepted; write ldapserver, ldapport and "
                "ldapscheme=ldaps (or ldaptls=1) separately"
            )
        if name not in LDAP_OPTIONS:
            return (
                f"options: {name!r} is not an option of method 'ldap' (accepted: "
                + ", ".join(sorted(LDAP_OPTIONS))
                + ")"
            )
    return None


def _values(options: Mapping[str, str]) -> str | None:
    for name, value in options.items():
        problem = option_value_problem(name, value)
        if problem is not None:
            return problem
    return None


def _server(options: Mapping[str, str]) -> str | None:
    servers = options.get("ldapserver")
    if servers is None:
        return (
            "options: method 'ldap' needs ldapserver, the directory's host name or "
            "address (the name its TLS certificate carries)"
        )
    for server in servers.split():
        if _is_address(server) or _HOST_NAME.match(server):
            continue
        return (
            f"options: ldapserver={server!r} is not a host name or IP address; "
            "write names such as ldap1.example.net separated by spaces, and the "
            "port in ldapport"
        )
    return None


def _port(options: Mapping[str, str]) -> str | None:
    port = options.get("ldapport")
    if port is None or (port.isdigit() and 1 <= int(port) <= 65535):
        return None
    return (
        f"options: ldapport={port!r} is not a TCP port; write a number from 1 to "
        "65535 (636 for ldaps, 389 for StartTLS) or leave it out"
    )


def _transport(options: Mapping[str, str]) -> str | None:
    scheme, starttls = options.get("ldapscheme"), options.get("ldaptls")
    if scheme not in (None, "ldaps"):
        return (
            f"options: ldapscheme={scheme!r} would send people's passwords to the "
            "directory without TLS; use ldapscheme=ldaps, or ldaptls=1 for StartTLS"
        )
    if starttls not in (None, "1"):
        return (
            f"options: ldaptls={starttls!r} leaves the connection to the directory "
            "without TLS; use ldaptls=1, or ldapscheme=ldaps"
        )
    if scheme is None and starttls is None:
        return (
            "options: method 'ldap' needs TLS to the directory, or people's "
            "passwords cross the network in the clear; add ldapscheme=ldaps "
            "(port 636) or ldaptls=1 (StartTLS on port 389)"
        )
    if scheme is not None and starttls is not None:
        return (
            "options: ldapscheme=ldaps and ldaptls=1 both ask for TLS; keep one "
            "(ldaps is TLS from the first byte, ldaptls=1 is StartTLS)"
        )
    return None


def _bind_dn(options: Mapping[str, str]) -> str | None:
    if "ldapprefix" in options or "ldapsuffix" in options:
        return None
    return (
        "options: method 'ldap' needs ldapprefix and/or ldapsuffix: the bind DN is "
        "ldapprefix + database role name + ldapsuffix, such as ldapprefix='uid=' "
        "ldapsuffix=',ou=people,dc=example,dc=net'"
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
