"""Apply the database roles spec on the ``db`` hosts of an inventory.

pyinfra inventories/<env>.py deploys/database_roles.py
"""

from pyinfra.context import host

from roles.database_roles import database_roles

if "db" in host.groups:
    database_roles()
