"""The nftables host firewall on every host of an inventory.

pyinfra inventories/<env>.py deploys/firewall.py

Every host needs ``firewall_admin_networks``; see docs/reference/firewall.md.
"""

from roles.firewall import firewall

firewall()
