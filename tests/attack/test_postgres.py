"""PostgreSQL attacked over the network: only TLS, only named networks, only
real passwords, never the superuser, and refusals that give nothing away.

The control machine is on the admin network, which the policy names; client1
is on the client network, which it does not.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pgfortress import tls

from .conftest import CERTIFICATE_USER, Target

pytestmark = pytest.mark.lab


# The policy ends in reject lines; without them PostgreSQL finds no entry.
_REFUSED_BY_POLICY = re.compile(
    r"pg_hba\.conf rejects connection|no pg_hba\.conf entry"
)


_CERTIFICATE_REFUSED = re.compile(r"certificate|SSL error")


def _connect(target: Target, user: str, password: str, **options: str) -> None:
    params: dict[str, Any] = {
        "host": target.db_address,
        "dbname": "app",
        "user": user,
        "password": password,
        "sslmode": "verify-full",
        "sslrootcert": str(target.ca_file),
        "connect_timeout": "10",
    } | options
    with psycopg.connect(**params) as connection:
        connection.execute("SELECT 1")


def _password(target: Target, role: str) -> str:
    return (target.lab.dir / "secrets" / "db1" / role).read_text().strip()


def _refusal(target: Target, user: str, password: str, **options: str) -> str:
    with pytest.raises(psycopg.OperationalError) as refused:
        _connect(target, user, password, **options)
    return str(refused.value)


def test_a_named_network_with_tls_and_the_password_gets_in(target: Target) -> None:
    _connect(target, "app_ro", _password(target, "app_ro"))


@pytest.mark.control("cis:5.2", "devsec:postgres-15")
def test_without_tls_even_the_right_password_is_refused(target: Target) -> None:
    message = _refusal(target, "app_ro", _password(target, "app_ro"), sslmode="disable")
    assert _REFUSED_BY_POLICY.search(message), message
    assert "no encryption" in message, message


@pytest.mark.control("cis:5.2")
def test_the_superuser_is_refused_over_tcp(target: Target) -> None:
    message = _refusal(target, "postgres", "anything")
    assert re.search(r'rejects connection for host .*user "postgres"', message), message


@pytest.mark.control("cis:5.2", "devsec:postgres-14")
def test_a_wrong_password_does_not_say_what_was_wrong(target: Target) -> None:
    """Wrong password for a real database role, a database role that does not
    exist, a NOLOGIN one: one message, the user name aside."""
    messages = {
        user: _refusal(target, user, "wrong-password-for-the-attack").replace(user, "U")
        for user in ("app_ro", "no_such_role_here", "app_owner")
    }
    assert len(set(messages.values())) == 1, messages
    assert "password authentication failed" in messages["app_ro"], messages


PROBE_FROM_CLIENT = r"""
import struct
host, port = DATA["host"], 5432
def startup():
    raw = socket.create_connection((host, port), timeout=5)
    raw.sendall(struct.pack("!ii", 8, 80877103))
    if raw.recv(1) != b"S":
        return "no TLS offered"
    tls = ssl.create_default_context(cafile=CA).wrap_socket(raw, server_hostname=host)
    body = b"user\x00app_ro\x00database\x00app\x00\x00"
    tls.sendall(struct.pack("!ii", 8 + len(body), 196608) + body)
    kind = tls.recv(1)
    message = tls.recv(4096)
    return kind.decode() + ":" + message.decode("utf-8", "replace")
try:
    result = startup()
except OSError as error:
    result = "connection failed: " + type(error).__name__
"""


@pytest.mark.control("cis:5.2")
def test_a_network_not_named_is_refused(target: Target) -> None:
    """From client1 the server either cannot be reached at all (the host
    firewall) or answers with an error before any authentication."""
    answer = target.client.run(PROBE_FROM_CLIENT, {"host": target.db_address})
    refused_by_hba = answer.startswith("E:") and _REFUSED_BY_POLICY.search(answer)
    assert refused_by_hba or answer.startswith("connection failed"), answer
    assert not answer.startswith("R:"), "client1 was asked to authenticate"


def _client_certificate(
    issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey, common_name: str
) -> tuple[bytes, bytes]:
    """A TLS client certificate for ``common_name``: PEM certificate and key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def _with_certificate(
    target: Target, where: Path, pem: tuple[bytes, bytes], user: str
) -> None:
    cert, key = where / "client.crt", where / "client.key"
    cert.write_bytes(pem[0])
    key.write_bytes(pem[1])
    key.chmod(0o600)
    _connect(target, user, "", sslcert=str(cert), sslkey=str(key))


def _lab_ca(target: Target) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    ca = tls.load_ca(target.lab.dir / "ca")
    key = ca.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return ca.certificate.subject, key


def test_a_client_certificate_from_the_lab_ca_gets_in(
    target: Target, tmp_path: Path
) -> None:
    name, key = _lab_ca(target)
    pem = _client_certificate(name, key, CERTIFICATE_USER)
    _with_certificate(target, tmp_path, pem, CERTIFICATE_USER)


@pytest.mark.control("cis:5.2", "devsec:postgres-14")
def test_client_certificates_it_should_not_trust_are_refused(
    target: Target, tmp_path: Path
) -> None:
    """Where the policy requires a certificate: none, one from a foreign CA
    that copies the lab CA's name, and the lab CA's for another user; and a
    password, even the right one."""
    name, key = _lab_ca(target)
    foreign = ec.generate_private_key(ec.SECP256R1())
    cases = {
        "foreign-ca": _client_certificate(name, foreign, CERTIFICATE_USER),
        "other-user": _client_certificate(name, key, "app_ro"),
    }
    for case, pem in cases.items():
        with pytest.raises(psycopg.OperationalError) as refused:
            _with_certificate(target, tmp_path, pem, CERTIFICATE_USER)
        # The foreign one fails the TLS handshake ("decrypt error"); the
        # other user's passes it and fails the certificate's name check.
        assert _CERTIFICATE_REFUSED.search(str(refused.value)), (case, refused.value)
    message = _refusal(target, CERTIFICATE_USER, _password(target, CERTIFICATE_USER))
    assert _CERTIFICATE_REFUSED.search(message), message
