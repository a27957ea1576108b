"""pyinfra inventory of an image build's lab host, for the bake and the check.

``pgfortress image`` runs pyinfra and the host checks with this file, the way
a user runs them with their own inventory. The environment says which lab and
which stage:

``PGFORTRESS_LAB``
    The lab holding the one host being built or checked.
``PGFORTRESS_IMAGE_STAGE``
    ``image``: what the image itself promises, with no per-host identity:
    PostgreSQL listens on loopback only, no network is let in, no probe
    database role; the TLS pair comes from a throwaway CA (the bake) or from
    the image's first boot. ``identity``: the follow-up deploy that gives the
    booted image its identity: it listens on eth0, lets the control machine in
    over TLS, has its certificate from the lab's CA and its passwords.
``PGFORTRESS_IMAGE_WORK``
    Directory holding ``ca/`` and ``secrets/`` of the bake (stage ``image``).
``PGFORTRESS_DATABASE_ROLES``
    Optional database roles spec applied in both stages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pgfortress.lab import load

lab = load(os.environ["PGFORTRESS_LAB"])
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

_data: dict[str, Any]
if _stage == "image":
    _data = {
        "postgres_listen": ["lo"],
        "postgres_tls": {"ca_dir": str(_work / "ca")},
        "postgres_hba": [],
        "pgfortress_secrets_dir": str(_work / "secrets"),
    }
else:
    _data = {
        "postgres_listen": ["eth0"],
        "postgres_tls": {"ca_dir": str(lab.dir / "ca")},
        "postgres_hba": [
            {
                "type": "hostssl",
                "databases": ["postgres"],
                "users": ["pgfortress_probe"],
                "address": source,
                "method": "scram-sha-256",
                "comment": "the control machine proves the host takes logins",
            }
            for source in (f"{lab.gateway}/32", f"{lab.gateway6}/128")
        ],
        "postgres_probe_role": {"name": "pgfortress_probe"},
        "pgfortress_secrets_dir": str(lab.dir / "secrets"),
    }
if _roles:
    _data["postgres_database_roles"] = _roles

db = (
    [(node.name, {"ssh_hostname": node.address}) for node in lab.hosts.values()],
    {**_ssh, **_data},
)
