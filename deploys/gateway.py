"""Install the gateway on the ``gw`` hosts of an inventory.

pyinfra inventories/<env>.py deploys/gateway.py
"""

from pyinfra.context import host

from roles.gateway import gateway

if "gw" in host.groups:
    gateway()
