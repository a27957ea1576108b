"""Everything for the ``db`` hosts: hardened PostgreSQL, then the database roles.

Every host whose data has ``firewall_admin_networks`` gets the nftables host
firewall first (docs/reference/firewall.md); it refuses, before any change, a
policy that would shut this deploy out of SSH.

pyinfra inventories/<env>.py deploys/site.py
"""

from pyinfra.context import host

from roles.database_roles import database_roles
from roles.firewall import firewall
from roles.postgres_server import postgres_server

if host.data.get("firewall_admin_networks") is not None:
    firewall()
if "db" in host.groups:
    postgres_server()
    if host.data.get("postgres_database_roles"):
        database_roles()
