"""Harden PostgreSQL on the ``db`` hosts of an inventory.

pyinfra inventories/<env>.py deploys/postgres.py
"""

from pyinfra.context import host

from roles.postgres_server import postgres_server

if "db" in host.groups:
    postgres_server()
