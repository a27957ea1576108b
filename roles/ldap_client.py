"""Provisioning role part: OpenLDAP's client configuration on a directory client.

PostgreSQL's ``ldap`` authentication uses OpenLDAP's client library, which
reads ``/etc/ldap/ldap.conf``. This writes that file so the directory's
certificate is verified (``TLS_REQCERT demand``) against the CA in
``/etc/ldap/pgfortress-directory-ca.crt``: the ``ldap_client_ca_file`` of the
inventory, or the toolkit's CA when it is not set. The library reads the
file when a server process first talks to the directory, so no restart is
needed.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.operations import files

from pgfortress.errors import PgFortressError
from pgfortress.plan.ldap import CLIENT_CA_FILE, CLIENT_CONF, render_client_conf
from pgfortress.spec.ldap import client_ca_file

__all__ = ["directory_ca", "ldap_client"]


def directory_ca(default_pem: bytes) -> bytes:
    """The CA to verify the directory with: ``ldap_client_ca_file`` or the default."""
    data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
    try:
        path = client_ca_file(host.name, data)
    except PgFortressError as error:
        raise DeployError(str(error)) from error
    return default_pem if path is None else path.read_bytes()


def ldap_client(ca_pem: bytes) -> None:
    """Write the directory's CA and ldap.conf (verification on, TLS 1.2 at least)."""
    files.directory(
        name="OpenLDAP client directory", path="/etc/ldap", user="root", mode="755"
    )
    files.put(
        name="CA of the directory's certificate",
        src=StringIO(ca_pem.decode()),
        dest=CLIENT_CA_FILE,
        user="root",
        group="root",
        mode="644",
    )
    files.put(
        name="OpenLDAP client configuration (verify the directory)",
        src=StringIO(render_client_conf()),
        dest=CLIENT_CONF,
        user="root",
        group="root",
        mode="644",
    )
