"""Harden PostgreSQL on the ``db`` hosts of an inventory.

A host whose data has ``firewall_admin_networks`` gets the nftables host
firewall first, as with deploys/site.py (docs/reference/firewall.md).

pyinfra inventories/<env>.py deploys/postgres.py
"""

from pyinfra.context import host

from roles.firewall import firewall
from roles.postgres_server import postgres_server

if host.data.get("firewall_admin_networks") is not None:
    firewall()
if "db" in host.groups:
    postgres_server()
