"""Inventory of a running lab (``pgfortress lab up``), for pyinfra and testinfra.

Select the lab with ``PGFORTRESS_LAB`` (default ``demo``). Every host is
reached over SSH as root with the lab's key and strict host key checking. The
policy lets the probe database role and the application's database roles
(``specs/lab.yml``, or the file named by ``PGFORTRESS_DATABASE_ROLES``) in
over TLS from the control machine and from the gateway hosts; the client hosts
are deliberately not named. The gateways' address filter lets in the control
machine (tests, the benchmark and the demo call from it) and the client hosts,
not the rest of the lab. With an ``ldap`` host in the lab, it runs the
directory (``deploys/ldap.py``) with two people, and the database hosts let
members of the ``directory_people`` database role in from the control
machine with their directory password (``ldap`` rules: LDAPS to the directory
for clients over IPv4, StartTLS for clients over IPv6).
"""

from __future__ import annotations

import os
from typing import Any

from pgfortress.lab import LabHost, LabState, load

lab: LabState = load(os.environ.get("PGFORTRESS_LAB", "demo"))


def _connection(node: LabHost) -> tuple[str, dict[str, Any]]:
    return node.name, {"ssh_hostname": node.address}


def _members(group: str) -> list[LabHost]:
    return [node for node in lab.hosts.values() if group in node.groups]


def _control_and(group: str) -> list[str]:
    """The control machine's and ``group``'s lab addresses, one host each."""
    sources = [f"{lab.gateway}/32", f"{lab.gateway6}/128"]
    for node in _members(group):
        sources += [f"{node.address}/32", f"{node.address6}/128"]
    return sources


def _trusted_sources() -> list[str]:
    """The control machine and the gateways; client hosts are not named."""
    return _control_and("gw")


def _rules(
    databases: list[str], users: list[str], comment: str
) -> list[dict[str, Any]]:
    return [
        {
            "type": "hostssl",
            "databases": databases,
            "users": users,
            "address": source,
            "method": "scram-sha-256",
            "comment": comment,
        }
        for source in _trusted_sources()
    ]


_ssh = {
    "ssh_user": "root",
    "ssh_key": str(lab.ssh_key),
    "ssh_known_hosts_file": str(lab.known_hosts),
    "ssh_strict_host_key_checking": "yes",
    "ssh_look_for_keys": False,
    "ssh_allow_agent": False,
    # apt-get update takes seconds here; an attempt the lab's apt proxy leaves
    # hanging (seen when several hosts refresh at once) is cut off after two
    # minutes instead of the default five.
    "apt_refresh_seconds": 120,
}

# PGFORTRESS_LAB_FIREWALL=on (make demo sets it) gives every host the
# nftables firewall, with this machine as the admin network: deploys/site.py
# then applies it first, deploys/firewall.py alone, and the host checks and
# `pgfortress audit` expect it.
_firewall_switch = os.environ.get("PGFORTRESS_LAB_FIREWALL", "off")
if _firewall_switch not in {"on", "off"}:
    raise ValueError(
        f"PGFORTRESS_LAB_FIREWALL={_firewall_switch!r}: write on or off (default off)"
    )
_firewall: dict[str, Any] = (
    {"firewall_admin_networks": [f"{lab.gateway}/32", f"{lab.gateway6}/128"]}
    if _firewall_switch == "on"
    else {}
)

_ldap_host = next(iter(_members("ldap")), None)
LDAP_DOMAIN = "pgfortress.lab"


def _base_dn() -> str:
    return ",".join(f"dc={label}" for label in LDAP_DOMAIN.split("."))


def _people_rules() -> list[dict[str, Any]]:
    """Directory people log in from the control machine, if the lab has a directory."""
    if _ldap_host is None:
        return []
    return [
        {
            "type": "hostssl",
            "databases": ["postgres"],
            "users": ["+directory_people"],
            "address": source,
            "method": "ldap",
            "options": {
                "ldapserver": _ldap_host.address,
                "ldapprefix": "uid=",
                "ldapsuffix": ",ou=people," + _base_dn(),
            }
            | tls,
            "comment": "people, with their directory password",
        }
        # Both ways to TLS: LDAPS for clients over IPv4, StartTLS over IPv6.
        for source, tls in (
            (f"{lab.gateway}/32", {"ldapscheme": "ldaps"}),
            (f"{lab.gateway6}/128", {"ldaptls": "1"}),
        )
    ]


db = (
    [_connection(node) for node in _members("db")],
    {
        **_ssh,
        **_firewall,
        "postgres_listen": ["eth0"],
        "postgres_tls": {"ca_dir": str(lab.dir / "ca")},
        "postgres_hba": [
            *_rules(["postgres"], ["pgfortress_probe"], "probe role"),
            *_rules(["app", "archive"], ["all"], "the application's database roles"),
            *_people_rules(),
        ],
        "postgres_probe_role": {"name": "pgfortress_probe"},
        "postgres_database_roles": os.environ.get(
            "PGFORTRESS_DATABASE_ROLES", "specs/lab.yml"
        ),
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    },
)


def _gateway(node: LabHost) -> tuple[str, dict[str, Any]]:
    name, data = _connection(node)
    return name, {**data, "gateway_listen": node.address}


_db_host = next(iter(_members("db")), None)
_cache_host = next(iter(_members("cache")), None)
# Gateways share their rate-limit counters through the lab's Redis, if any.
_limits: dict[str, Any] = {
    "per_subject": os.environ.get("PGFORTRESS_LAB_RATE", "600/minute"),
    "per_address": os.environ.get("PGFORTRESS_LAB_ADDRESS_RATE", "1200/minute"),
}
if _cache_host is not None:
    _limits |= {
        "redis_host": _cache_host.address,
        "redis_password_secret": "redis/password",
    }
gw = (
    [_gateway(node) for node in _members("gw")],
    {
        **_ssh,
        **_firewall,
        "gateway_database": {
            "host": _db_host.address if _db_host else "127.0.0.1",
            "dbname": "app",
            "password_secret": f"{_db_host.name if _db_host else 'db1'}/authenticator",
        },
        # No anonymous role on the lab's gateway: every call needs a token.
        "gateway_api": {"schema": "api", "allowed_roles": ["web_user"]},
        "gateway_limits": _limits,
        "gateway_ca_dir": str(lab.dir / "ca"),
        # Who calls the gateways; the role adds the database and Redis hosts.
        "gateway_allowed_networks": _control_and("client"),
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    },
)
client = (
    [_connection(node) for node in _members("client")],
    {**_ssh, **_firewall},
)

cache = (
    [
        (name, {**data, "redis_listen": node.address})
        for node in _members("cache")
        for name, data in [_connection(node)]
    ],
    {
        **_ssh,
        **_firewall,
        "redis_password_secret": "redis/password",
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    },
)

ldap = (
    [
        (name, {**data, "ldap_listen": node.address})
        for node in _members("ldap")
        for name, data in [_connection(node)]
    ],
    {
        **_ssh,
        **_firewall,
        "ldap_domain": LDAP_DOMAIN,
        "ldap_ca_dir": str(lab.dir / "ca"),
        "ldap_people": [
            {"uid": "ada", "name": "Ada Lovelace"},
            {"uid": "grace", "name": "Grace Hopper"},
        ],
        # Used only where the firewall is on: the database hosts check
        # people's passwords here.
        "firewall_ldap_networks": [f"{node.address}/32" for node in _members("db")],
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    },
)
