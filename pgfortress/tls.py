"""A private certificate authority and PostgreSQL server certificates.

Everything here runs on the control machine. The CA lives in one directory
(mode 0700) holding ``ca.key`` (0600, unencrypted: the directory is the
protection, and an operator may keep it on an encrypted volume) and ``ca.crt``
(0644). Issued server pairs are kept under a store directory as
``<host>/server.crt`` and ``<host>/server.key`` and reused while they still
fit, so a second deploy changes nothing on the hosts.

Operators may bring their own CA (RSA or ECDSA key) by pointing at a directory
with the same two files, or their own server pairs via
:func:`load_certificate_pair`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pgfortress._logging import logger
from pgfortress.errors import SpecError, TLSError
from pgfortress.secrets import Secret, write_file_atomically
from pgfortress.spec.postgres import TlsSpec

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "SERVER_CERT",
    "SERVER_KEY",
    "CertificateAuthority",
    "IssuedCertificate",
    "certificate_covers",
    "check_certificate_pair",
    "ensure_server_certificate",
    "host_certificate",
    "init_ca",
    "issue_server_certificate",
    "key_matches_certificate",
    "load_ca",
    "load_certificate_pair",
]

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"

CA_MIN_REMAINING = timedelta(days=30)
# Hosts whose clocks run a little behind must already accept a fresh cert.
CLOCK_SKEW = timedelta(minutes=5)

SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_MIN_RSA_BITS = 2048
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_HOST_SEGMENT = re.compile(r"[A-Za-z0-9_:-][A-Za-z0-9_.:-]*")


@dataclass(frozen=True)
class IssuedCertificate:
    """A server certificate, its private key and the chain to present."""

    cert_pem: bytes
    key_pem: Secret = field(repr=False)
    chain_pem: bytes  # leaf first, then the issuing CA

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def ca_pem(self) -> bytes:
        """The chain after the leaf.

        That is the issuing CA for pairs pgfortress made, and whatever followed
        the leaf (possibly nothing) in an operator's certificate file.
        """
        return self.chain_pem[len(self.cert_pem) :]


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA certificate with its signing key (kept out of ``repr``)."""

    directory: Path
    certificate: x509.Certificate
    key: SigningKey = field(repr=False, compare=False)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue_server(
        self,
        *,
        common_name: str,
        dns_names: Sequence[str],
        ip_addresses: Sequence[str],
        valid_days: int = 397,
    ) -> IssuedCertificate:
        return issue_server_certificate(
            self,
            common_name=common_name,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            valid_days=valid_days,
        )


def init_ca(
    directory: Path, common_name: str, *, valid_days: int = 3650
) -> CertificateAuthority:
    """Create a new CA (ECDSA P-256) in ``directory``; never overwrites one."""
    _check_common_name(common_name)
    if valid_days <= CA_MIN_REMAINING.days:
        raise SpecError(
            f"CA validity of {valid_days} days is too short: use more than "
            f"{CA_MIN_REMAINING.days} days (the default is 3650)"
        )
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if key_path.exists() or cert_path.exists():
        raise TLSError(
            f"{directory} already holds a CA; refusing to overwrite it. Use it as "
            "it is (`pgfortress ca show --dir` prints it), or choose an empty "
            "directory for a new CA"
        )
    _make_private_directory(directory)

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(key_id, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    ca = CertificateAuthority(directory, certificate, key)
    try:
        write_file_atomically(key_path, _key_pem(key), mode=0o600)
        write_file_atomically(cert_path, ca.cert_pem(), mode=0o644)
    except OSError as exc:
        # A key without its certificate would block the next init attempt.
        key_path.unlink(missing_ok=True)
        raise TLSError(f"cannot write the CA into {directory}: {exc}") from exc
    logger.info("created CA %r in %s", common_name, directory)
    return ca


def load_ca(directory: Path) -> CertificateAuthority:
    """Load and check the CA in ``directory``: modes, key, CA-ness, validity."""
    fix = (
        f"create one with `pgfortress ca init --dir {directory}` "
        "or point postgres_tls.ca_dir (gateway_ca_dir) at your own CA"
    )
    if not directory.is_dir():
        raise TLSError(f"no CA directory at {directory}: {fix}")
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    for path in (key_path, cert_path):
        if not path.exists():
            raise TLSError(f"CA directory {directory} has no {path.name}: {fix}")
    _check_owner_and_mode(directory, directory.stat(), forbidden=0o077, fix="700")
    cert_pem = _read_checked(cert_path, forbidden=0o022, fix="644")
    certificates = _load_certificates(cert_pem, cert_path)
    if len(certificates) != 1:
        raise TLSError(
            f"{cert_path} holds {len(certificates)} certificates: keep only the "
            "certificate of the CA that signs server certificates in it"
        )
    certificate = certificates[0]
    key = _load_key(_read_checked(key_path, forbidden=0o077, fix="600"), key_path)
    if not key_matches_certificate(key, certificate):
        raise TLSError(
            f"{key_path} is not the private key of {cert_path}: "
            "put the CA's own key next to its certificate"
        )
    _check_is_ca(certificate, cert_path)
    _check_validity(
        certificate,
        cert_path,
        fix=f"create a new CA with `pgfortress ca init --dir NEW_DIR`, point "
        f"tls.ca_dir at it, give clients its {CA_CERT} and redeploy",
        min_remaining=CA_MIN_REMAINING,
    )
    return CertificateAuthority(directory, certificate, key)


def issue_server_certificate(
    ca: CertificateAuthority,
    *,
    common_name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    valid_days: int = 397,
) -> IssuedCertificate:
    """Issue a fresh ECDSA P-256 server certificate naming every host name.

    The certificate never outlives the CA, starts a few minutes in the past
    to absorb clock skew, and is usable for TLS server authentication only.
    """
    _check_common_name(common_name)
    if valid_days < 1:
        raise SpecError(
            f"certificate validity must be at least 1 day, not {valid_days}"
        )
    names = list(dict.fromkeys(_dns_name(name) for name in dns_names))
    addresses = list(dict.fromkeys(_ip_address(value) for value in ip_addresses))
    if not names and not addresses:
        raise SpecError(
            f"server certificate {common_name!r} needs at least one DNS name or "
            "IP address: clients check those, not the common name"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names += [x509.IPAddress(address) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(
            min(now + timedelta(days=valid_days), ca.certificate.not_valid_after_utc)
        )
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(_authority_key_id(ca), critical=False)
        .sign(ca.key, _signing_hash(ca.key))
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    return IssuedCertificate(
        cert_pem=cert_pem,
        key_pem=Secret(_key_pem(key).decode("ascii")),
        chain_pem=cert_pem + ca.cert_pem(),
    )


def ensure_server_certificate(
    ca: CertificateAuthority,
    store_dir: Path,
    host: str,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    renew_within_days: int = 30,
    valid_days: int = 397,
) -> IssuedCertificate:
    """Return the kept pair for ``host``, issuing a new one only when needed.

    The pair in ``store_dir/<host>/`` is reused while it is signed by ``ca``,
    its key matches, it names at least every requested DNS name and IP, and
    more than ``renew_within_days`` days remain. Otherwise a new pair
    replaces it: the key is written first, so a run interrupted in between
    leaves a mismatched pair that the next run replaces.
    """
    if not _HOST_SEGMENT.fullmatch(host):
        raise SpecError(
            f"host name {host!r} cannot name a certificate directory: use "
            "letters, digits, '.', '_', ':' and '-', not starting with a dot"
        )
    if not 0 <= renew_within_days < valid_days:
        raise SpecError(
            f"renew_within_days={renew_within_days} must be at least 0 and below "
            f"valid_days={valid_days}, or every run would issue a new certificate"
        )
    host_dir = store_dir / host
    _make_private_directory(store_dir)
    _make_private_directory(host_dir)
    cert_path, key_path = host_dir / SERVER_CERT, host_dir / SERVER_KEY

    if cert_path.exists() and key_path.exists():
        cert_pem = _read_checked(cert_path, forbidden=0o077, fix="600")
        key_pem = _read_checked(key_path, forbidden=0o077, fix="600")
        reason = _why_replace(
            ca, cert_pem, key_pem, dns_names, ip_addresses, renew_within_days
        )
        if reason is None:
            logger.debug("reusing the server certificate of %s", host)
            return IssuedCertificate(
                cert_pem=cert_pem,
                key_pem=Secret(key_pem.decode("ascii")),
                chain_pem=cert_pem + ca.cert_pem(),
            )
    else:
        reason = "none issued yet"

    logger.info("issuing a server certificate for %s: %s", host, reason)
    issued = issue_server_certificate(
        ca,
        common_name=host,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        valid_days=valid_days,
    )
    try:
        key_bytes = issued.key_pem.reveal().encode("ascii")
        write_file_atomically(key_path, key_bytes, mode=0o600, replace=True)
        write_file_atomically(cert_path, issued.cert_pem, mode=0o600, replace=True)
    except OSError as exc:
        raise TLSError(f"cannot write the server pair into {host_dir}: {exc}") from exc
    return issued


def _why_replace(
    ca: CertificateAuthority,
    cert_pem: bytes,
    key_pem: bytes,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    renew_within_days: int,
) -> str | None:
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "the kept files cannot be parsed"
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return "it was signed by a different CA"
    if not key_matches_certificate(key, certificate):
        return "its key does not match"
    missing = certificate_covers(certificate, dns_names, ip_addresses)
    if missing:
        return f"it does not name {', '.join(missing)}"
    now = _now()
    if certificate.not_valid_before_utc > now + CLOCK_SKEW:
        return "it is not valid yet"
    remaining = certificate.not_valid_after_utc - now
    if remaining <= timedelta(days=renew_within_days):
        return f"it expires in {max(remaining.days, 0)} days"
    return None


def certificate_covers(
    cert: x509.Certificate, dns_names: Sequence[str], ip_addresses: Sequence[str]
) -> list[str]:
    """Return the requested names and addresses that ``cert`` does not name.

    DNS names compare case-insensitively, and a ``*.`` wildcard in the
    certificate stands for exactly one leftmost label; addresses compare by
    value, so ``::1`` and ``0:0:0:0:0:0:0:1`` are the same.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return [*dns_names, *ip_addresses]
    held_names = {_plain(name) for name in san.value.get_values_for_type(x509.DNSName)}
    held_addresses = set(san.value.get_values_for_type(x509.IPAddress))
    missing = [name for name in dns_names if not _name_held(name, held_names)]
    missing += [ip for ip in ip_addresses if _ip_address(ip) not in held_addresses]
    return missing


def _name_held(name: str, held: set[str]) -> bool:
    wanted = _plain(name)
    _, dot, parent = wanted.partition(".")
    return wanted in held or (bool(dot) and f"*.{parent}" in held)


def key_matches_certificate(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    """Tell whether ``key`` is the private half of the key in ``cert``."""
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki)


def load_certificate_pair(
    cert_path: Path,
    key_path: Path,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> IssuedCertificate:
    """Load an operator's own server certificate (leaf first, chain after).

    Refuses a key readable by group or others, a key that does not match, a
    certificate outside its validity and one missing a requested name. One
    expiring within 30 days is accepted with a warning: pgfortress cannot
    renew a certificate it did not issue.
    """
    cert_pem = _read_checked(cert_path, forbidden=0o022, fix="644")
    _load_certificates(cert_pem, cert_path)
    key_pem = _read_checked(key_path, forbidden=0o077, fix="600")
    certificates = check_certificate_pair(
        cert_pem,
        key_pem,
        cert_path=cert_path,
        key_path=key_path,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
    )
    leaf = certificates[0]
    remaining = leaf.not_valid_after_utc - _now()
    if remaining < CA_MIN_REMAINING:
        logger.warning("%s expires in %d days: renew it", cert_path, remaining.days)
    pems = [cert.public_bytes(serialization.Encoding.PEM) for cert in certificates]
    return IssuedCertificate(pems[0], Secret(key_pem.decode("ascii")), b"".join(pems))


def check_certificate_pair(
    cert_pem: bytes,
    key_pem: bytes,
    *,
    cert_path: Path,
    key_path: Path,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> list[x509.Certificate]:
    """Check an operator's server pair given as PEM bytes; return its certificates.

    Pure: the paths only name the files in messages, and each message starts
    with the path of the file to fix (the key's, when the key does not match).
    Raises :class:`TLSError` for an unparsable file, a key that is not the
    certificate's, a certificate outside its validity or one that does not
    name every requested DNS name and address.
    """
    certificates = _load_certificates(cert_pem, cert_path)
    leaf = certificates[0]
    key = _load_key(key_pem, key_path)
    if not key_matches_certificate(key, leaf):
        raise TLSError(
            f"{key_path} is not the private key of {cert_path}: "
            "pair the certificate with the key it was issued for"
        )
    _check_validity(leaf, cert_path, fix="renew it with your CA")
    missing = certificate_covers(leaf, dns_names, ip_addresses)
    if missing:
        raise TLSError(
            f"{cert_path} does not name {', '.join(missing)} in subjectAltName: "
            "reissue it with those names, or drop them from the host's TLS names"
        )
    return certificates


def host_certificate(
    host: str,
    spec: TlsSpec,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
) -> tuple[CertificateAuthority, IssuedCertificate]:
    """Load the CA and the server pair one host will present, naming the key to fix.

    Runs on the control machine only, before any host changes: an expired
    CA, an operator's certificate that does not name the host's addresses or
    a key that does not match raise :class:`TLSError` starting with
    ``host <host>: postgres_tls.<field>:``. Without ``cert_file`` the CA
    issues (or reuses) a pair in ``spec.issued_dir``.
    """
    try:
        ca = load_ca(spec.ca_dir)
    except TLSError as error:
        raise TLSError(f"host {host}: postgres_tls.ca_dir: {error}") from error
    if spec.cert_file is None or spec.key_file is None:
        try:
            issued = ensure_server_certificate(
                ca,
                spec.issued_dir,
                host,
                dns_names=dns_names,
                ip_addresses=ip_addresses,
            )
        except TLSError as error:
            raise TLSError(f"host {host}: postgres_tls: {error}") from error
        return ca, issued
    try:
        pair = load_certificate_pair(
            spec.cert_file,
            spec.key_file,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
        )
    except TLSError as error:
        field = _file_named_first(str(error), spec.cert_file, spec.key_file)
        raise TLSError(f"host {host}: postgres_tls.{field}: {error}") from error
    return ca, pair


def _file_named_first(message: str, cert_file: Path, key_file: Path) -> str:
    """``cert_file`` or ``key_file``: the one whose path the message names first."""
    found = {
        field: message.find(str(path))
        for field, path in (("cert_file", cert_file), ("key_file", key_file))
    }
    named = {field: at for field, at in found.items() if at >= 0}
    return min(named, key=lambda field: named[field]) if named else "cert_file"


def _check_is_ca(certificate: x509.Certificate, path: Path) -> None:
    try:
        constraints = certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        ).value
    except x509.ExtensionNotFound:
        constraints = x509.BasicConstraints(ca=False, path_length=None)
    if not constraints.ca:
        raise TLSError(
            f"{path} is not a CA certificate (basicConstraints CA:TRUE is "
            "missing): point postgres_tls.ca_dir (gateway_ca_dir) at a CA, not at "
            "a server certificate"
        )
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise TLSError(
            f"{path} may not sign certificates (keyUsage lacks keyCertSign): "
            "use a CA certificate that allows it"
        )


def _check_validity(
    certificate: x509.Certificate,
    path: Path,
    *,
    fix: str,
    min_remaining: timedelta | None = None,
) -> None:
    now = _now()
    start = certificate.not_valid_before_utc
    end = certificate.not_valid_after_utc
    if now < start:
        raise TLSError(
            f"{path} is not valid before {start:%Y-%m-%d %H:%M} UTC: "
            "check the control machine's clock"
        )
    if now > end:
        raise TLSError(f"{path} expired on {end:%Y-%m-%d}: {fix}")
    if min_remaining is not None and end - now < min_remaining:
        raise TLSError(
            f"{path} expires on {end:%Y-%m-%d}, in {(end - now).days} days: "
            f"rotate it now: {fix}"
        )


def _load_certificates(pem: bytes, path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise TLSError(
            f"{path} does not hold a PEM certificate: expected one or more "
            "-----BEGIN CERTIFICATE----- blocks"
        ) from None


def _load_key(pem: bytes, path: Path) -> SigningKey:
    if not pem.isascii():
        raise TLSError(f"{path} has non-ASCII bytes: keep only the PEM key in it")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise TLSError(
            f"{path} is encrypted: pgfortress signs unattended, so store the key "
            f"unencrypted in a private directory (`openssl pkey -in {path}` "
            "prints it), ideally on an encrypted volume"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSError(
            f"{path} does not hold a PEM private key: expected "
            "-----BEGIN PRIVATE KEY----- or a PEM RSA/EC key"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= _MIN_RSA_BITS:
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, _EC_CURVES
    ):
        return key
    raise TLSError(
        f"{path} holds an unsupported key: use RSA with at least {_MIN_RSA_BITS} "
        "bits or ECDSA on P-256, P-384 or P-521"
    )


def _read_checked(path: Path, *, forbidden: int, fix: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TLSError(f"cannot read {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise TLSError(f"{path} is not a regular file")
        _check_owner_and_mode(path, info, forbidden=forbidden, fix=fix)
        return handle.read()


def _check_owner_and_mode(
    path: Path, info: os.stat_result, *, forbidden: int, fix: str
) -> None:
    if info.st_uid != os.geteuid():
        raise TLSError(
            f"{path} is owned by uid {info.st_uid}, not by the current user "
            f"(uid {os.geteuid()}): run `chown {os.geteuid()} {path}`"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & forbidden:
        raise TLSError(
            f"{path} has mode {mode:04o}, open to group or others: run "
            f"`chmod {fix} {path}` (if a key was readable, treat it as exposed "
            "and replace it)"
        )


def _make_private_directory(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise TLSError(f"cannot create {path}: {exc.strerror}") from exc
    else:
        path.chmod(0o700)  # mkdir applies the umask; set the mode exactly
    if not path.is_dir():
        raise TLSError(f"{path} exists but is not a directory")
    _check_owner_and_mode(path, path.stat(), forbidden=0o077, fix="700")


def _check_common_name(common_name: str) -> None:
    # X.509 caps a common name at 64 characters.
    if not 1 <= len(common_name) <= 64:
        raise SpecError(f"common name {common_name!r} must be 1 to 64 characters long")


def _dns_name(name: str) -> str:
    plain = _plain(name)
    labels = plain.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if (
        len(plain) > 253
        or not labels
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
    ):
        raise SpecError(
            f"{name!r} is not a DNS name a certificate can carry: use ASCII "
            "letters, digits and '-' in dot-separated labels"
        )
    return plain


def _plain(name: str) -> str:
    return name.lower().removesuffix(".")


def _ip_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise SpecError(f"{value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise SpecError(f"{value!r} has a zone index, which certificates cannot hold")
    return address


def _key_usage(
    *,
    digital_signature: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca: CertificateAuthority) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        )
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _signing_hash(key: SigningKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    # Match the digest to the curve's strength, as TLS stacks expect.
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()
    return hashes.SHA256()


def _key_pem(key: SigningKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime:
    return datetime.now(UTC)
