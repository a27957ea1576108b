"""An inventory for your own servers: copy it, then change names and networks.

    pgfortress ca init --dir ~/.local/share/pgfortress/prod-ca
    pyinfra inventories/example.py deploys/postgres.py

See docs/tutorial.md for the walk-through and docs/reference/inventory.md for
every key.
"""

from __future__ import annotations

from pathlib import Path

CA_DIR = str(Path("~/.local/share/pgfortress/prod-ca").expanduser())
SECRETS_DIR = str(Path("~/.local/share/pgfortress/prod-secrets").expanduser())

db = (
    [
        ("db1.example.net", {"postgres_listen": ["192.0.2.10"]}),
    ],
    {
        "ssh_user": "root",
        "postgres_tls": {"ca_dir": CA_DIR, "dns_names": ["db.example.net"]},
        "postgres_hba": [
            {
                "type": "hostssl",
                "databases": ["app"],
                "users": ["app_rw"],
                "address": "198.51.100.0/24",
                "method": "scram-sha-256",
                "comment": "application servers",
            },
        ],
        "postgres_probe_role": {"name": "pgfortress_probe"},
        "pgfortress_secrets_dir": SECRETS_DIR,
        # The nftables host firewall (deploys/firewall.py, and the first step
        # of deploys/site.py): SSH and PostgreSQL from here, PostgreSQL also
        # from the postgres_hba networks above. Name the network you deploy
        # from, or the run stops before changing anything;
        # see docs/reference/firewall.md.
        "firewall_admin_networks": ["203.0.113.0/28"],
    },
)
