"""The live state of a hardened PostgreSQL host.

Each check names the controls it covers (``pytest.mark.control``); the ids are
those of pgfortress/audit/catalogue.py, and ``pgfortress audit`` reports them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from pgfortress.plan.settings import TLS_CIPHERS

from .conftest import Expected

Psql = Callable[..., str]
control = pytest.mark.control


@control("devsec:postgres-01")
def test_server_package_installed(host: Any, expected: Expected) -> None:
    assert host.package(expected.layout.package).is_installed


@control("cis:1.2", "devsec:postgres-01")
def test_service_running_and_enabled_under_systemd(
    host: Any, expected: Expected
) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    service = host.service(expected.layout.service)
    assert service.is_running
    assert service.is_enabled


def _listening(host: Any, port: int) -> set[str]:
    lines = host.check_output("ss -H -l -t -n").splitlines()
    addresses = set()
    for line in lines:
        local = line.split()[3]
        address, _, local_port = local.rpartition(":")
        if int(local_port) == port:
            addresses.add(address.strip("[]").split("%")[0])
    return addresses


@control("cis:6.3")
def test_listens_only_on_intended_addresses(host: Any, expected: Expected) -> None:
    listening = _listening(host, expected.spec.port)
    assert listening, "PostgreSQL listens on no TCP address"
    if expected.listen == ["*"]:
        return
    wanted = {str(ipaddress.ip_address(a)) for a in expected.listen}
    assert {str(ipaddress.ip_address(a)) for a in listening} == wanted
    assert not listening & {"0.0.0.0", "*", "::"}


@control("cis:5.1", "cis:6.3")
def test_unix_socket_is_private(host: Any, expected: Expected) -> None:
    socket = expected.spec.socket
    path = f"{socket.directory}/.s.PGSQL.{expected.spec.port}"
    sock = host.file(path)
    assert sock.is_socket
    assert sock.mode == int(socket.mode, 8)
    assert sock.group == socket.group
    assert socket.group in host.user("postgres").groups


@control("cis:6.8", "devsec:postgres-10")
def test_server_key_is_private(host: Any, expected: Expected) -> None:
    layout = expected.layout
    key = host.file(layout.server_key)
    assert (key.user, key.mode) == ("postgres", 0o600)
    tls_dir = host.file(layout.tls_dir)
    assert (tls_dir.user, tls_dir.group, tls_dir.mode) == ("root", "postgres", 0o750)


@control("devsec:postgres-10")
def test_configuration_files_belong_to_postgres(host: Any, expected: Expected) -> None:
    layout = expected.layout
    hba = host.file(layout.hba_file)
    assert (hba.user, hba.group, hba.mode) == ("postgres", "postgres", 0o640)
    dropin = host.file(layout.dropin_file)
    assert dropin.user == "postgres"
    assert dropin.mode & 0o022 == 0


@control("devsec:postgres-20")
def test_data_directory_is_private(host: Any, expected: Expected) -> None:
    data = host.file(expected.layout.data_dir)
    assert (data.user, data.mode) == ("postgres", 0o700)


@control("cis:5.2", "devsec:postgres-14", "devsec:postgres-15")
def test_no_weak_method_over_tcp_in_live_rules(psql: Psql) -> None:
    rows = psql(
        "SELECT type || ' ' || coalesce(auth_method, '') || ' ' || coalesce(error, '') "
        "FROM pg_hba_file_rules"
    ).splitlines()
    assert rows
    for row in rows:
        kind, method, *error = row.split(" ", 2)
        assert not "".join(error).strip(), row
        if kind != "local":
            # ldap only over hostssl; tests/host/test_ldap.py checks the
            # directory leg is TLS too.
            assert method in {"scram-sha-256", "cert", "ldap", "reject"}, row
            assert kind == "hostssl" or method == "reject", row


@control("cis:5.2")
def test_first_rule_is_local_admin_peer_and_last_rules_reject(psql: Psql) -> None:
    rows = psql(
        "SELECT type, auth_method FROM pg_hba_file_rules ORDER BY line_number"
    ).splitlines()
    assert rows[0] == "local|peer"
    assert rows[1:3] == ["host|reject", "host|reject"]
    assert all(row.endswith("|reject") for row in rows[-4:])


@control("cis:6.4", "cis:6.8", "devsec:postgres-11", "devsec:postgres-12")
def test_tls_is_on_with_the_pgfortress_certificate(
    psql: Psql, expected: Expected
) -> None:
    assert psql("SHOW ssl") == "on"
    assert psql("SHOW ssl_min_protocol_version") in {"TLSv1.2", "TLSv1.3"}
    assert psql("SHOW ssl_ciphers") == TLS_CIPHERS
    assert psql("SHOW ssl_cert_file") == expected.layout.server_cert
    assert "snakeoil" not in psql("SHOW ssl_key_file")


@control("cis:6.8")
def test_certificate_chain_starts_with_the_leaf(host: Any, expected: Expected) -> None:
    chain = host.check_output(
        "openssl crl2pkcs7 -nocrl -certfile %s | openssl pkcs7 -print_certs -noout",
        expected.layout.server_cert,
    )
    subjects = [line for line in chain.splitlines() if line.startswith("subject=")]
    assert len(subjects) >= 2
    issuer_lines = [line for line in chain.splitlines() if line.startswith("issuer=")]
    assert subjects[0] != issuer_lines[0], "the first certificate is self-signed"


@control("devsec:postgres-07")
def test_passwords_are_stored_as_scram(psql: Psql) -> None:
    assert psql("SHOW password_encryption") == "scram-sha-256"
    weak = psql(
        "SELECT count(*) FROM pg_authid WHERE rolpassword IS NOT NULL "
        "AND rolpassword NOT LIKE 'SCRAM-SHA-256$%'"
    )
    assert weak == "0"


@control("cis:3.1.20", "devsec:postgres-16")
def test_connections_are_logged(psql: Psql, expected: Expected) -> None:
    assert expected.spec.logging.connections, "the inventory turned it off"
    assert psql("SHOW log_connections") == "on"


@control("cis:3.1.21", "devsec:postgres-16")
def test_disconnections_are_logged(psql: Psql, expected: Expected) -> None:
    assert expected.spec.logging.disconnections, "the inventory turned it off"
    assert psql("SHOW log_disconnections") == "on"


@control("cis:3.1.25", "cis:6.5")
def test_statements_are_logged_as_the_policy_says(
    psql: Psql, expected: Expected
) -> None:
    assert psql("SHOW log_statement") == expected.spec.logging.statement
    assert expected.spec.logging.statement != "none", "the inventory turned it off"


@control("cis:3.1.24", "cis:6.4", "devsec:postgres-16")
def test_log_line_prefix_names_time_process_user_database_client(
    psql: Psql, expected: Expected
) -> None:
    # psql output is stripped; the prefix usually ends in a space.
    prefix = psql("SHOW log_line_prefix")
    assert prefix == expected.spec.logging.line_prefix.strip()
    assert all(code in prefix for code in ("%m", "%p", "%u", "%d"))
    assert "%r" in prefix or "%h" in prefix


@control("cis:4.2", "devsec:postgres-08")
def test_exactly_one_superuser(psql: Psql) -> None:
    assert psql("SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolsuper") == (
        "postgres"
    )


def test_no_setting_waits_for_a_restart(psql: Psql) -> None:
    assert psql("SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
