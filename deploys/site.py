"""Everything for the ``db`` hosts: hardened PostgreSQL, then the database roles.

pyinfra inventories/<env>.py deploys/site.py
"""

from pyinfra.context import host

from roles.database_roles import database_roles
from roles.postgres_server import postgres_server

if "db" in host.groups:
    postgres_server()
    if host.data.get("postgres_database_roles"):
        database_roles()
