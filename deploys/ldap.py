"""A directory (OpenLDAP's slapd) for people's logins, on the ``ldap`` hosts.

pyinfra inventories/<env>.py deploys/ldap.py
"""

from pyinfra.context import host

from roles.ldap_server import ldap_server

if "ldap" in host.groups:
    ldap_server()
