"""``ldap`` rules on a PostgreSQL host: exactly the inventory's, TLS on both legs.

A person's password travels from the client to PostgreSQL and from
PostgreSQL to the directory; both legs must be TLS, and the directory's
certificate must be verified. On a host whose policy has no ``ldap`` rule the
check proves that none is live either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pgfortress.plan.ldap import CLIENT_CA_FILE, CLIENT_CONF

from .conftest import Expected

Psql = Callable[..., str]
control = pytest.mark.control


@control("cis:5.2", "devsec:postgres-14", "devsec:postgres-15")
def test_ldap_rules_are_the_inventorys_with_tls_on_both_legs(
    host: Any, psql: Psql, expected: Expected
) -> None:
    rows = psql(
        "SELECT type, array_to_string(options, ' ') FROM pg_hba_file_rules "
        "WHERE auth_method = 'ldap' AND error IS NULL"
    ).splitlines()
    wanted = [rule for rule in expected.spec.hba if rule.method == "ldap"]
    assert len(rows) == len(wanted), rows
    for row in rows:
        kind, options = row.split("|", 1)
        assert kind == "hostssl", row
        settings = options.split()
        assert "ldapscheme=ldaps" in settings or "ldaptls=true" in settings, row
        assert not any(
            s.startswith(("ldapbindpasswd=", "ldapbasedn=")) for s in settings
        )
    if wanted:
        _check_directory_is_verified(host)


def _check_directory_is_verified(host: Any) -> None:
    conf = host.file(CLIENT_CONF)
    assert (conf.user, conf.mode) == ("root", 0o644)
    settings = {}
    for line in conf.content_string.splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            settings[words[0].upper()] = words[1]
    assert settings["TLS_REQCERT"] == "demand"
    assert settings["TLS_CACERT"] == CLIENT_CA_FILE
    ca = host.file(CLIENT_CA_FILE)
    assert ca.user == "root"
    assert "-----BEGIN CERTIFICATE-----" in ca.content_string
