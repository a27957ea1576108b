"""pyinfra inventory of an image build's lab hosts, for the bake and the check.

``pgfortress image`` runs pyinfra and the host checks with this file, the way
a user runs them with their own inventory. The environment says which lab,
which role and which stage:

``PGFORTRESS_LAB``
    The lab holding the host being built or checked (and, for a gateway's
    check, the database host it serves).
``PGFORTRESS_IMAGE_ROLE``
    ``db`` (the default) or ``gateway``: what the image runs.
``PGFORTRESS_IMAGE_STAGE``
    ``image``: what the image itself promises, with no per-host identity.
    A db image's PostgreSQL listens on loopback only, no network is let in,
    no probe database role; the TLS pair comes from a throwaway CA (the bake)
    or from the image's first boot. A gateway is installed and enabled but
    not started (``gateway_start: false``): its configuration names a
    placeholder database on loopback, its certificate comes from the
    throwaway CA, and all of it is removed before export.
    ``identity``: the follow-up deploy that gives the booted image its
    identity. A db host listens on eth0, lets the control machine in over
    TLS, has its certificate from the lab's CA and its passwords. A gateway
    gets the lab's db1 as its database (deployed from a fresh root with the
    database roles, letting the gateway in), its certificate from the lab's
    CA, its secrets, and an address filter letting only the control machine
    call it.
``PGFORTRESS_IMAGE_WORK``
    Directory holding ``ca/`` and ``secrets/`` of the bake (stage ``image``).
``PGFORTRESS_DATABASE_ROLES``
    Optional database roles spec applied to the db hosts in both stages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pgfortress.image.identity import PLACEHOLDER_PASSWORD
from pgfortress.lab import LabHost, load

lab = load(os.environ["PGFORTRESS_LAB"])
_role = os.environ.get("PGFORTRESS_IMAGE_ROLE", "db")
if _role not in {"db", "gateway"}:
    raise ValueError(f"PGFORTRESS_IMAGE_ROLE={_role!r}: write db or gateway")
_stage = os.environ.get("PGFORTRESS_IMAGE_STAGE", "image")
if _stage not in {"image", "identity"}:
    raise ValueError(f"PGFORTRESS_IMAGE_STAGE={_stage!r}: write image or identity")
_work = Path(os.environ.get("PGFORTRESS_IMAGE_WORK") or lab.dir / "image")
_roles = os.environ.get("PGFORTRESS_DATABASE_ROLES")


_ssh = {
    "ssh_user": "root",
    "ssh_key": str(lab.ssh_key),
    "ssh_known_hosts_file": str(lab.known_hosts),
    "ssh_strict_host_key_checking": "yes",
    "ssh_look_for_keys": False,
    "ssh_allow_agent": False,
}
_control = [f"{lab.gateway}/32", f"{lab.gateway6}/128"]


def _members(group: str) -> list[LabHost]:
    return [node for node in lab.hosts.values() if group in node.groups]


def _hostssl(
    databases: list[str], users: list[str], sources: list[str], why: str
) -> list[dict[str, Any]]:
    return [
        {
            "type": "hostssl",
            "databases": databases,
            "users": users,
            "address": source,
            "method": "scram-sha-256",
            "comment": why,
        }
        for source in sources
    ]


_data: dict[str, Any]
if _stage == "image":
    _data = {
        "postgres_listen": ["lo"],
        "postgres_tls": {"ca_dir": str(_work / "ca")},
        "postgres_hba": [],
        "pgfortress_secrets_dir": str(_work / "secrets"),
    }
else:
    # A gateway image's check: the gateway being verified reaches the app.
    _gateways = [
        network
        for node in (_members("gw") if _role == "gateway" else [])
        for network in (f"{node.address}/32", f"{node.address6}/128")
    ]
    _data = {
        "postgres_listen": ["eth0"],
        "postgres_tls": {"ca_dir": str(lab.dir / "ca")},
        "postgres_hba": [
            *_hostssl(
                ["postgres"],
                ["pgfortress_probe"],
                _control,
                "the control machine proves the host takes logins",
            ),
            *_hostssl(["app"], ["all"], _gateways, "the gateway being verified"),
        ],
        "postgres_probe_role": {"name": "pgfortress_probe"},
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    }
if _roles:
    _data["postgres_database_roles"] = _roles

db = (
    [(node.name, {"ssh_hostname": node.address}) for node in _members("db")],
    {**_ssh, **_data},
)

_gateway: dict[str, Any]
_database = next(iter(_members("db")), None)
if _stage == "image":
    _gateway = {
        "gateway_database": {
            "host": "127.0.0.1",
            "dbname": "app",
            "password_secret": PLACEHOLDER_PASSWORD,
        },
        "gateway_api": {"schema": "api"},
        "gateway_ca_dir": str(_work / "ca"),
        "gateway_start": False,
        "pgfortress_secrets_dir": str(_work / "secrets"),
    }
elif _database is None:
    raise ValueError(f"lab {lab.name}: a gateway is verified against db1; it has none")
else:
    _gateway = {
        "gateway_database": {
            "host": _database.address,
            "dbname": "app",
            "password_secret": f"{_database.name}/authenticator",
        },
        "gateway_api": {"schema": "api", "allowed_roles": ["web_user"]},
        "gateway_ca_dir": str(lab.dir / "ca"),
        # The verification calls it from the control machine, and only that.
        "gateway_allowed_networks": _control,
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    }
gw = (
    [
        (node.name, {"ssh_hostname": node.address, "gateway_listen": node.address})
        for node in _members("gw")
    ]
    if _role == "gateway"
    else [],
    {**_ssh, **_gateway},
)
