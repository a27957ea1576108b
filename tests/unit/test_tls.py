"""The CA, server certificates and their reuse on the control machine."""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from pgfortress.errors import SpecError, TLSError
from pgfortress.tls import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    CertificateAuthority,
    IssuedCertificate,
    SigningKey,
    certificate_covers,
    ensure_server_certificate,
    init_ca,
    issue_server_certificate,
    key_matches_certificate,
    load_ca,
    load_certificate_pair,
)

DNS = ["db1.example.com", "db1"]
IPS = ["10.0.0.5", "2001:db8::5"]
PEM = serialization.Encoding.PEM
E = TypeVar("E", bound=x509.ExtensionType)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return init_ca(tmp_path / "ca", "pgfortress test CA")


@pytest.fixture
def leaf(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue_server(common_name="db1", dns_names=DNS, ip_addresses=IPS)


def extension(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


# --- independent certificate building, for CAs pgfortress did not make -------


def make_cert(
    subject: str,
    key: SigningKey,
    *,
    issuer: tuple[x509.Certificate, SigningKey] | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    is_ca: bool = True,
    cert_sign: bool = True,
    dns_names: Sequence[str] = (),
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now() - timedelta(days=1))
        .not_valid_after(not_after or now() + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca and cert_sign,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
    )
    if dns_names:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(san, False)
    return builder.sign(signer, hashes.SHA256())


def key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_ca(directory: Path, cert: x509.Certificate, key: SigningKey) -> Path:
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    (directory / CA_CERT).write_bytes(cert.public_bytes(PEM))
    (directory / CA_CERT).chmod(0o644)
    (directory / CA_KEY).write_bytes(key_pem(key))
    (directory / CA_KEY).chmod(0o600)
    return directory


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def verify_chain(ca: CertificateAuthority, cert_pem: bytes, subject: str) -> None:
    """Path validation by cryptography's own verifier, as a TLS client would."""
    name: x509.DNSName | x509.IPAddress
    try:
        name = x509.IPAddress(ipaddress.ip_address(subject))
    except ValueError:
        name = x509.DNSName(subject)
    verifier = (
        PolicyBuilder()
        .store(Store([ca.certificate]))
        .time(now())
        .build_server_verifier(name)
    )
    chain = verifier.verify(x509.load_pem_x509_certificate(cert_pem), [])
    assert chain[-1] == ca.certificate


# --- init_ca -----------------------------------------------------------------


def test_init_ca_writes_private_files(ca: CertificateAuthority) -> None:
    assert mode_of(ca.directory) == 0o700
    assert mode_of(ca.directory / CA_KEY) == 0o600
    assert mode_of(ca.directory / CA_CERT) == 0o644
    key_text = (ca.directory / CA_KEY).read_text()
    assert key_text.startswith("-----BEGIN PRIVATE KEY-----")
    assert (ca.directory / CA_CERT).read_bytes() == ca.cert_pem()


def test_init_ca_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        created = init_ca(tmp_path / "ca", "umask CA")
    finally:
        os.umask(previous)
    assert mode_of(created.directory) == 0o700
    assert mode_of(created.directory / CA_KEY) == 0o600


def test_ca_certificate_properties(ca: CertificateAuthority) -> None:
    cert = ca.certificate
    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)

    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature

    key_id = extension(cert, x509.SubjectKeyIdentifier).value
    assert key_id == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())

    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert cert.subject.rfc4514_string() == "CN=pgfortress test CA"
    cert.verify_directly_issued_by(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) < lifetime < timedelta(days=3650, minutes=10)


def test_init_ca_refuses_to_overwrite(ca: CertificateAuthority) -> None:
    before = (ca.directory / CA_KEY).read_bytes()
    with pytest.raises(TLSError, match="refusing to overwrite") as caught:
        init_ca(ca.directory, "second")
    assert str(ca.directory) in str(caught.value)
    assert (ca.directory / CA_KEY).read_bytes() == before


@pytest.mark.parametrize(
    ("name", "days", "message"),
    [
        ("ok", 30, "too short"),
        ("", 3650, "common name"),
        ("x" * 65, 3650, "1 to 64 characters"),
    ],
)
def test_init_ca_validates_its_arguments(
    tmp_path: Path, name: str, days: int, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        init_ca(tmp_path / "ca", name, valid_days=days)
    assert not (tmp_path / "ca").exists()


def test_init_ca_refuses_an_existing_open_directory(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    directory.mkdir()
    directory.chmod(0o755)
    with pytest.raises(TLSError, match="0755") as caught:
        init_ca(directory, "test CA")
    assert f"chmod 700 {directory}" in str(caught.value)
    assert list(directory.iterdir()) == []


def test_ca_repr_does_not_show_the_key(ca: CertificateAuthority) -> None:
    text = repr(ca)
    assert "key=" not in text
    assert "PRIVATE" not in text


# --- load_ca -----------------------------------------------------------------


def test_load_ca_returns_the_same_ca(ca: CertificateAuthority) -> None:
    loaded = load_ca(ca.directory)
    assert loaded == ca
    assert key_matches_certificate(loaded.key, ca.certificate)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rsa-2048"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="ec-p384"),
    ],
)
def test_an_operators_own_ca_can_issue(
    tmp_path: Path, key: Callable[[], SigningKey]
) -> None:
    ca_key = key()
    directory = write_ca(tmp_path / "own", make_cert("Own CA", ca_key), ca_key)
    own = load_ca(directory)
    issued = own.issue_server(common_name="db1", dns_names=DNS, ip_addresses=IPS)
    verify_chain(own, issued.cert_pem, "db1.example.com")
    verify_chain(own, issued.cert_pem, "2001:db8::5")


def _remove(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def _chmod(name: str, mode: int) -> Callable[[Path], None]:
    return lambda d: (d / name if name else d).chmod(mode)


def _replace_ca(**kwargs: object) -> Callable[[Path], None]:
    def breaker(directory: Path) -> None:
        key = new_key()
        write_ca(directory, make_cert("Broken CA", key, **kwargs), key)  # type: ignore[arg-type]

    return breaker


def _foreign_key(directory: Path) -> None:
    (directory / CA_KEY).write_bytes(key_pem(new_key()))


def _encrypted_key(directory: Path) -> None:
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    encrypted = key.private_bytes(
        PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (directory / CA_KEY).write_bytes(encrypted)


def _weak_rsa_key(directory: Path) -> None:
    key = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point
    write_ca(directory, make_cert("Weak CA", key), key)


def _two_certificates(directory: Path) -> None:
    with (directory / CA_CERT).open("ab") as handle:
        handle.write((directory / CA_CERT).read_bytes())


def _garbage_certificate(directory: Path) -> None:
    (directory / CA_CERT).write_text("this is not a certificate\n")


DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        pytest.param(
            None,
            ["no CA directory", "pgfortress ca init --dir", "tls.ca_dir"],
            id="missing-directory",
        ),
        pytest.param(
            _remove(CA_KEY), ["has no ca.key", "pgfortress ca init"], id="no-key"
        ),
        pytest.param(
            _remove(CA_CERT), ["has no ca.crt", "tls.ca_dir"], id="no-certificate"
        ),
        pytest.param(_chmod("", 0o755), ["0755", "chmod 700"], id="open-directory"),
        pytest.param(_chmod(CA_KEY, 0o640), ["0640", "chmod 600"], id="open-key"),
        pytest.param(
            _chmod(CA_CERT, 0o664), ["0664", "chmod 644"], id="writable-certificate"
        ),
        pytest.param(
            _foreign_key, ["is not the private key of", CA_CERT], id="mismatch"
        ),
        pytest.param(_encrypted_key, ["is encrypted", "openssl pkey"], id="encrypted"),
        pytest.param(_weak_rsa_key, ["unsupported key", "2048"], id="rsa-1024"),
        pytest.param(
            lambda d: (d / CA_KEY).write_bytes(b"\xff" + (d / CA_KEY).read_bytes()),
            ["non-ASCII"],
            id="binary-junk-in-key",
        ),
        pytest.param(_two_certificates, ["holds 2 certificates"], id="bundle"),
        pytest.param(
            _garbage_certificate, ["does not hold a PEM certificate"], id="garbage"
        ),
        pytest.param(
            _replace_ca(is_ca=False),
            ["not a CA certificate", "basicConstraints"],
            id="not-a-ca",
        ),
        pytest.param(_replace_ca(cert_sign=False), ["keyCertSign"], id="may-not-sign"),
        pytest.param(
            _replace_ca(not_before=now() - 400 * DAY, not_after=now() - DAY),
            ["expired on", "pgfortress ca init --dir NEW_DIR"],
            id="expired",
        ),
        pytest.param(
            _replace_ca(not_before=now() + DAY),
            ["not valid before", "clock"],
            id="not-yet-valid",
        ),
        pytest.param(
            _replace_ca(not_after=now() + 10 * DAY),
            ["expires on", "rotate it now", "pgfortress ca init"],
            id="expiring-soon",
        ),
    ],
)
def test_load_ca_explains_what_is_wrong(
    tmp_path: Path, breaker: Callable[[Path], None] | None, expected: list[str]
) -> None:
    directory = tmp_path / "ca"
    if breaker is not None:  # None: the directory was never created
        init_ca(directory, "test CA")
        breaker(directory)
    with pytest.raises(TLSError) as caught:
        load_ca(directory)
    message = str(caught.value)
    assert str(directory) in message
    for fragment in expected:
        assert fragment in message


def test_load_ca_refuses_a_ca_owned_by_another_user(
    ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 4242)
    with pytest.raises(TLSError, match="owned by uid") as caught:
        load_ca(ca.directory)
    assert f"chown {os.getuid() + 4242} {ca.directory}" in str(caught.value)


# --- server certificates -----------------------------------------------------


def test_server_certificate_names_every_host_name(leaf: IssuedCertificate) -> None:
    san = extension(leaf.certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == DNS
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address(ip) for ip in IPS
    ]


@pytest.mark.parametrize(
    ("kind", "critical", "check"),
    [
        (
            x509.BasicConstraints,
            True,
            lambda v: v == x509.BasicConstraints(ca=False, path_length=None),
        ),
        (
            x509.KeyUsage,
            True,
            lambda v: (
                v.digital_signature
                and not (v.key_cert_sign or v.crl_sign or v.key_encipherment)
            ),
        ),
        (
            x509.ExtendedKeyUsage,
            False,
            lambda v: list(v) == [ExtendedKeyUsageOID.SERVER_AUTH],
        ),
        (x509.SubjectAlternativeName, False, lambda v: len(v) == 4),
        (x509.SubjectKeyIdentifier, False, lambda v: len(v.digest) == 20),
        (x509.AuthorityKeyIdentifier, False, lambda v: v.key_identifier is not None),
    ],
)
def test_server_certificate_extensions(
    leaf: IssuedCertificate,
    kind: type[x509.ExtensionType],
    critical: bool,
    check: Callable[[x509.ExtensionType], bool],
) -> None:
    ext = extension(leaf.certificate, kind)
    assert ext.critical is critical
    assert check(ext.value)


def test_server_certificate_points_at_its_ca(
    ca: CertificateAuthority, leaf: IssuedCertificate
) -> None:
    cert = leaf.certificate
    aki = extension(cert, x509.AuthorityKeyIdentifier).value
    ski = extension(ca.certificate, x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert cert.issuer == ca.certificate.subject
    cert.verify_directly_issued_by(ca.certificate)


@pytest.mark.parametrize("subject", [*DNS, *IPS])
def test_server_certificate_validates_like_a_tls_client_would(
    ca: CertificateAuthority, leaf: IssuedCertificate, subject: str
) -> None:
    verify_chain(ca, leaf.cert_pem, subject)


def test_server_certificate_key_and_validity(
    ca: CertificateAuthority, leaf: IssuedCertificate
) -> None:
    cert = leaf.certificate
    key = serialization.load_pem_private_key(leaf.key_pem.reveal().encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert key_matches_certificate(key, cert)
    assert leaf.key_pem.reveal().startswith("-----BEGIN PRIVATE KEY-----")

    started = now() - cert.not_valid_before_utc
    assert timedelta(minutes=4) < started < timedelta(minutes=6)
    left = cert.not_valid_after_utc - now()
    assert timedelta(days=396) < left <= timedelta(days=397)


def test_serial_numbers_are_random(ca: CertificateAuthority) -> None:
    serials = {
        ca.issue_server(
            common_name="h", dns_names=["h"], ip_addresses=[]
        ).certificate.serial_number
        for _ in range(5)
    }
    assert len(serials) == 5
    assert all(serial.bit_length() > 64 for serial in serials)


def test_chain_is_leaf_then_ca(
    ca: CertificateAuthority, leaf: IssuedCertificate
) -> None:
    chain = x509.load_pem_x509_certificates(leaf.chain_pem)
    assert chain == [leaf.certificate, ca.certificate]
    assert leaf.chain_pem == leaf.cert_pem + ca.cert_pem()
    assert leaf.ca_pem == ca.cert_pem()


def test_issued_repr_does_not_show_the_key(leaf: IssuedCertificate) -> None:
    assert "PRIVATE" not in repr(leaf)
    assert "PRIVATE" not in str(leaf)


def test_a_certificate_never_outlives_its_ca(tmp_path: Path) -> None:
    short = init_ca(tmp_path / "ca", "short CA", valid_days=60)
    issued = short.issue_server(common_name="h", dns_names=["h"], ip_addresses=[])
    assert issued.certificate.not_valid_after_utc == (
        short.certificate.not_valid_after_utc
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dns_names": [], "ip_addresses": []}, "at least one DNS name or IP"),
        ({"dns_names": ["bad_name"]}, "'bad_name' is not a DNS name"),
        ({"dns_names": ["-lead.example"]}, "is not a DNS name"),
        ({"dns_names": ["a..b"]}, "is not a DNS name"),
        ({"dns_names": ["caf\u00e9.example"]}, "is not a DNS name"),
        ({"dns_names": ["x" * 64 + ".example"]}, "is not a DNS name"),
        ({"ip_addresses": ["10.0.0.256"]}, "'10.0.0.256' is not an IPv4 or IPv6"),
        ({"ip_addresses": ["fe80::1%eth0"]}, "zone index"),
        ({"valid_days": 0}, "at least 1 day"),
        ({"common_name": ""}, "common name"),
    ],
)
def test_issue_validates_its_arguments(
    ca: CertificateAuthority, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {
        "common_name": "db1",
        "dns_names": DNS,
        "ip_addresses": IPS,
        **kwargs,
    }
    with pytest.raises(SpecError, match=message):
        issue_server_certificate(ca, **arguments)  # type: ignore[arg-type]


def test_wildcard_and_duplicate_names(ca: CertificateAuthority) -> None:
    issued = ca.issue_server(
        common_name="db",
        dns_names=["*.db.example.com", "DB1.example.com.", "db1.example.com"],
        ip_addresses=["10.0.0.1", "10.0.0.1"],
    )
    san = extension(issued.certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "*.db.example.com",
        "db1.example.com",
    ]
    assert len(san.get_values_for_type(x509.IPAddress)) == 1


# --- certificate_covers and key_matches_certificate --------------------------


@pytest.mark.parametrize(
    ("dns_names", "ip_addresses", "missing"),
    [
        (DNS, IPS, []),
        (["DB1.Example.COM", "db1."], [], []),
        ([], ["2001:0db8:0:0:0:0:0:5"], []),
        (["db2.example.com"], [], ["db2.example.com"]),
        (["db1"], ["10.0.0.6", "10.0.0.5"], ["10.0.0.6"]),
        (["x.db1"], ["::1"], ["x.db1", "::1"]),
        ([], [], []),
    ],
)
def test_certificate_covers(
    leaf: IssuedCertificate,
    dns_names: list[str],
    ip_addresses: list[str],
    missing: list[str],
) -> None:
    assert certificate_covers(leaf.certificate, dns_names, ip_addresses) == missing


@pytest.mark.parametrize(
    ("wanted", "covered"),
    [
        ("a.db.example.com", True),
        ("A.DB.example.com", True),
        ("db.example.com", False),
        ("a.b.db.example.com", False),
    ],
)
def test_a_wildcard_covers_exactly_one_label(
    ca: CertificateAuthority, wanted: str, covered: bool
) -> None:
    issued = ca.issue_server(
        common_name="db", dns_names=["*.db.example.com"], ip_addresses=[]
    )
    assert (certificate_covers(issued.certificate, [wanted], []) == []) is covered


def test_a_certificate_without_names_covers_nothing() -> None:
    key = new_key()
    bare = make_cert("bare", key, is_ca=False)
    assert certificate_covers(bare, ["a"], ["10.0.0.1"]) == ["a", "10.0.0.1"]


def test_key_matches_certificate(
    ca: CertificateAuthority, leaf: IssuedCertificate
) -> None:
    assert key_matches_certificate(ca.key, ca.certificate)
    assert not key_matches_certificate(ca.key, leaf.certificate)
    assert not key_matches_certificate(new_key(), ca.certificate)


# --- ensure_server_certificate -----------------------------------------------


def ensure(
    ca: CertificateAuthority, store: Path, **kwargs: object
) -> IssuedCertificate:
    arguments: dict[str, object] = {"dns_names": DNS, "ip_addresses": IPS, **kwargs}
    return ensure_server_certificate(ca, store, "db1", **arguments)  # type: ignore[arg-type]


def test_ensure_keeps_the_pair_privately(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    store = tmp_path / "issued"
    issued = ensure(ca, store)
    host_dir = store / "db1"
    assert mode_of(store) == mode_of(host_dir) == 0o700
    assert mode_of(host_dir / SERVER_CERT) == mode_of(host_dir / SERVER_KEY) == 0o600
    assert (host_dir / SERVER_CERT).read_bytes() == issued.cert_pem
    assert (host_dir / SERVER_KEY).read_text() == issued.key_pem.reveal()
    assert sorted(p.name for p in host_dir.iterdir()) == [SERVER_CERT, SERVER_KEY]


def test_a_second_run_reuses_the_same_bytes(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first = ensure(ca, tmp_path)
    inode = (tmp_path / "db1" / SERVER_CERT).stat().st_ino
    second = ensure(ca, tmp_path)
    assert second == first
    assert second.chain_pem == first.chain_pem
    assert (tmp_path / "db1" / SERVER_CERT).stat().st_ino == inode


def test_asking_for_fewer_names_still_reuses(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first = ensure(ca, tmp_path)
    assert ensure(ca, tmp_path, dns_names=["DB1"], ip_addresses=[]) == first


def test_a_ca_loaded_again_still_reuses(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first = ensure(ca, tmp_path)
    assert ensure(load_ca(ca.directory), tmp_path) == first


def _other_ca(ca: CertificateAuthority, tmp_path: Path) -> CertificateAuthority:
    return init_ca(tmp_path / "other-ca", ca.certificate.subject.rfc4514_string()[3:])


@pytest.mark.parametrize(
    ("second_call", "reason"),
    [
        pytest.param(
            lambda ca, d: ensure(ca, d, dns_names=[*DNS, "db1.internal"]),
            "does not name db1.internal",
            id="new-dns-name",
        ),
        pytest.param(
            lambda ca, d: ensure(ca, d, ip_addresses=[*IPS, "10.0.0.9"]),
            "does not name 10.0.0.9",
            id="new-ip",
        ),
        pytest.param(
            lambda ca, d: ensure(_other_ca(ca, d), d),
            "different CA",
            id="other-ca-same-name",
        ),
        pytest.param(
            lambda ca, d: ensure(ca, d, renew_within_days=397, valid_days=398),
            "expires in",
            id="inside-renewal-window",
        ),
    ],
)
def test_ensure_issues_a_new_pair_when_the_old_one_no_longer_fits(
    ca: CertificateAuthority,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    second_call: Callable[[CertificateAuthority, Path], IssuedCertificate],
    reason: str,
) -> None:
    first = ensure(ca, tmp_path)
    with caplog.at_level(logging.INFO, logger="pgfortress"):
        second = second_call(ca, tmp_path)
    assert second.cert_pem != first.cert_pem
    assert second.key_pem != first.key_pem
    assert (tmp_path / "db1" / SERVER_CERT).read_bytes() == second.cert_pem
    assert reason in caplog.text
    assert "PRIVATE" not in caplog.text


def test_a_short_lived_pair_is_renewed_once_near_expiry(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    first = ensure(ca, tmp_path, valid_days=20, renew_within_days=10)
    assert ensure(ca, tmp_path, valid_days=20, renew_within_days=10) == first
    renewed = ensure(ca, tmp_path)
    assert renewed.cert_pem != first.cert_pem
    assert ensure(ca, tmp_path) == renewed


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(
            lambda d: (d / SERVER_KEY).write_bytes(key_pem(new_key())),
            "key does not match",
            id="foreign-key",
        ),
        pytest.param(
            lambda d: (d / SERVER_CERT).write_text("garbage"),
            "cannot be parsed",
            id="corrupt",
        ),
        pytest.param(
            lambda d: (d / SERVER_CERT).unlink(),
            "none issued yet",
            id="half-missing",
        ),
    ],
)
def test_ensure_replaces_a_damaged_pair(
    ca: CertificateAuthority,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], object],
    reason: str,
) -> None:
    first = ensure(ca, tmp_path)
    damage(tmp_path / "db1")
    with caplog.at_level(logging.INFO, logger="pgfortress"):
        second = ensure(ca, tmp_path)
    assert second.cert_pem != first.cert_pem
    assert reason in caplog.text
    assert ensure(ca, tmp_path) == second


def test_ensure_refuses_a_key_others_could_read(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    ensure(ca, tmp_path)
    key_path = tmp_path / "db1" / SERVER_KEY
    key_path.chmod(0o644)
    with pytest.raises(TLSError) as caught:
        ensure(ca, tmp_path)
    message = str(caught.value)
    assert str(key_path) in message
    assert "chmod 600" in message
    assert "exposed" in message


def test_ensure_refuses_an_open_store(ca: CertificateAuthority, tmp_path: Path) -> None:
    store = tmp_path / "issued"
    store.mkdir(mode=0o755)
    store.chmod(0o755)
    with pytest.raises(TLSError, match="0755") as caught:
        ensure(ca, store)
    assert f"chmod 700 {store}" in str(caught.value)


@pytest.mark.parametrize("host", ["", ".hidden", "..", "a/b", "../x", "with space"])
def test_ensure_refuses_host_names_unfit_for_a_directory(
    ca: CertificateAuthority, tmp_path: Path, host: str
) -> None:
    with pytest.raises(SpecError, match="cannot name a certificate directory"):
        ensure_server_certificate(ca, tmp_path, host, dns_names=DNS, ip_addresses=[])
    assert list(tmp_path.iterdir()) == [ca.directory]


@pytest.mark.parametrize(("renew", "valid"), [(-1, 397), (397, 397), (30, 20)])
def test_ensure_refuses_a_renewal_window_that_never_closes(
    ca: CertificateAuthority, tmp_path: Path, renew: int, valid: int
) -> None:
    with pytest.raises(SpecError, match="every run would issue"):
        ensure(ca, tmp_path, renew_within_days=renew, valid_days=valid)


# --- operator-provided server pairs ------------------------------------------


def write_pair(
    directory: Path, issued: IssuedCertificate, *, key_mode: int = 0o600
) -> tuple[Path, Path]:
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(issued.chain_pem)
    key_path.write_text(issued.key_pem.reveal())
    key_path.chmod(key_mode)
    return cert_path, key_path


def test_load_certificate_pair_accepts_a_good_pair(
    ca: CertificateAuthority, leaf: IssuedCertificate, tmp_path: Path
) -> None:
    cert_path, key_path = write_pair(tmp_path, leaf)
    loaded = load_certificate_pair(
        cert_path, key_path, dns_names=["db1"], ip_addresses=["10.0.0.5"]
    )
    assert loaded == leaf
    assert loaded.ca_pem == ca.cert_pem()


def test_an_operator_pair_without_a_chain_has_no_ca_pem(
    leaf: IssuedCertificate, tmp_path: Path
) -> None:
    cert_path, key_path = write_pair(tmp_path, leaf)
    cert_path.write_bytes(leaf.cert_pem)
    loaded = load_certificate_pair(cert_path, key_path)
    assert loaded.chain_pem == loaded.cert_pem
    assert loaded.ca_pem == b""


def test_load_certificate_pair_refuses_a_mismatched_key(
    ca: CertificateAuthority, leaf: IssuedCertificate, tmp_path: Path
) -> None:
    cert_path, key_path = write_pair(tmp_path, leaf)
    key_path.write_bytes(key_pem(new_key()))
    with pytest.raises(TLSError, match="is not the private key of") as caught:
        load_certificate_pair(cert_path, key_path)
    assert str(key_path) in str(caught.value)
    assert str(cert_path) in str(caught.value)


def test_load_certificate_pair_names_what_is_not_covered(
    leaf: IssuedCertificate, tmp_path: Path
) -> None:
    cert_path, key_path = write_pair(tmp_path, leaf)
    with pytest.raises(TLSError) as caught:
        load_certificate_pair(
            cert_path, key_path, dns_names=["db2"], ip_addresses=["10.9.9.9"]
        )
    message = str(caught.value)
    assert "db2, 10.9.9.9" in message
    assert str(cert_path) in message
    assert "reissue" in message


@pytest.mark.parametrize(
    ("not_before", "not_after", "fragment"),
    [
        (now() - 30 * DAY, now() - DAY, "expired on"),
        (now() + DAY, now() + 90 * DAY, "not valid before"),
    ],
)
def test_load_certificate_pair_refuses_an_invalid_period(
    ca: CertificateAuthority,
    tmp_path: Path,
    not_before: datetime,
    not_after: datetime,
    fragment: str,
) -> None:
    key = new_key()
    cert = make_cert(
        "db1",
        key,
        issuer=(ca.certificate, ca.key),
        not_before=not_before,
        not_after=not_after,
        is_ca=False,
        dns_names=["db1"],
    )
    cert_path, key_path = tmp_path / "s.crt", tmp_path / "s.key"
    cert_path.write_bytes(cert.public_bytes(PEM))
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    with pytest.raises(TLSError, match=fragment) as caught:
        load_certificate_pair(cert_path, key_path)
    assert str(cert_path) in str(caught.value)


def test_load_certificate_pair_warns_when_expiry_is_near(
    ca: CertificateAuthority, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    short = ca.issue_server(
        common_name="db1", dns_names=["db1"], ip_addresses=[], valid_days=10
    )
    cert_path, key_path = write_pair(tmp_path, short)
    with caplog.at_level(logging.WARNING, logger="pgfortress"):
        load_certificate_pair(cert_path, key_path)
    assert "renew it" in caplog.text


def test_load_certificate_pair_refuses_an_open_key(
    leaf: IssuedCertificate, tmp_path: Path
) -> None:
    cert_path, key_path = write_pair(tmp_path, leaf, key_mode=0o644)
    with pytest.raises(TLSError) as caught:
        load_certificate_pair(cert_path, key_path)
    assert f"chmod 600 {key_path}" in str(caught.value)
    assert leaf.key_pem.reveal() not in str(caught.value)
