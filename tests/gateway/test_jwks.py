"""Keys from a JWKS URL: start-up, refetches, rotation, throttling, failures.

Every JWKS here is served by a real HTTP(S) server on 127.0.0.1 that the test
starts on a random port; nothing else on the network is contacted.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pgfortress_gateway._jwks import JWKS_MAX_BYTES, JWKS_UNKNOWN_KID_SECONDS
from pgfortress_gateway.auth import Authenticator, CredentialsError
from pgfortress_gateway.config import ConfigError, JwtConfig, config_from_mapping

KIDS = ("a", "b", "x")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class _Handler(http.server.BaseHTTPRequestHandler):
    server: JwksServer

    def do_GET(self) -> None:
        server = self.server
        server.requests += 1
        server.gate.wait(timeout=10)
        self.send_response(server.status)
        for name, value in server.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(server.body)))
        self.end_headers()
        self.wfile.write(server.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the request count instead."""


class JwksServer(http.server.HTTPServer):
    """One answer on 127.0.0.1, changed by the test between requests."""

    def __init__(self, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keys = keys
        self.scheme = "http"
        self.status = 200
        self.body = b""
        self.extra_headers: dict[str, str] = {}
        self.requests = 0
        self.gate = threading.Event()
        self.gate.set()
        self._thread: threading.Thread | None = None

    def start(self, tls: ssl.SSLContext | None = None) -> JwksServer:
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.gate.set()
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up early (the oversized answer) is expected."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_port}/jwks.json"

    def answer(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.status, self.body, self.extra_headers = status, body, headers or {}

    def publish(self, *kids: str, change: dict[str, Any] | None = None) -> None:
        entries = [
            json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.keys[kid].public_key()))
            | {"kid": kid}
            for kid in kids
        ]
        if change:
            entries[0] |= change
        self.answer(200, json.dumps({"keys": entries}).encode())


@pytest.fixture(scope="module")
def keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    return {kid: ec.generate_private_key(ec.SECP256R1()) for kid in KIDS}


@pytest.fixture
def serve(
    keys: dict[str, ec.EllipticCurvePrivateKey],
) -> Iterator[Callable[..., JwksServer]]:
    servers: list[JwksServer] = []

    def start(tls: ssl.SSLContext | None = None) -> JwksServer:
        server = JwksServer(keys)
        servers.append(server)
        server.publish("a")
        return server.start(tls)

    yield start
    for server in servers:
        server.stop()


@dataclass(frozen=True)
class Tls:
    ca_file: Path
    server: ssl.SSLContext


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.crt"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Tls(ca_file, context)


def bearer(
    keys: dict[str, ec.EllipticCurvePrivateKey],
    signer: str,
    kid: str | None = None,
    **headers: str,
) -> str:
    """A token signed by key ``signer``, naming ``kid`` (by default the same)."""
    claims = {"role": "web_user", "sub": "alice", "exp": int(time.time()) + 600}
    headers["kid"] = kid or signer
    return "Bearer " + jwt.encode(claims, keys[signer], "ES256", headers=headers)


def authenticator(server: JwksServer, clock: Clock, **settings: Any) -> Authenticator:
    return Authenticator(JwtConfig(jwks_url=server.url, **settings), clock=clock)


def reason(call: Callable[[], object]) -> str:
    with pytest.raises(CredentialsError) as caught:
        call()
    assert caught.value.status == 401
    return caught.value.reason


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "pgfortress_gateway" and record.levelno == logging.WARNING
    ]


def test_keys_are_fetched_from_the_url_at_start(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    auth = authenticator(server, Clock())

    assert auth.authenticate(bearer(keys, "a")).role == "web_user"
    assert server.requests == 1


def test_https_url_is_checked_against_the_configured_ca(
    serve: Callable[..., JwksServer],
    keys: dict[str, ec.EllipticCurvePrivateKey],
    tls: Tls,
) -> None:
    server = serve(tls.server)
    auth = authenticator(server, Clock(), jwks_ca_file=tls.ca_file)

    assert server.url.startswith("https://127.0.0.1:")
    assert auth.authenticate(bearer(keys, "a")).subject == "alice"


def _stop(server: JwksServer) -> None:
    server.stop()


STARTUP_FAILURES: list[Any] = [
    pytest.param(
        False, lambda s: s.answer(404, b"gone"), "answered HTTP 404", id="not-found"
    ),
    pytest.param(
        False,
        lambda s: s.answer(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"}),
        "redirects are not followed",
        id="redirect",
    ),
    pytest.param(
        False,
        lambda s: s.answer(200, b"<html>"),
        "is not a JWKS document",
        id="not-json",
    ),
    pytest.param(
        False,
        lambda s: s.answer(200, b" " * (JWKS_MAX_BYTES + 10)),
        f"sent more than {JWKS_MAX_BYTES} bytes",
        id="oversized",
    ),
    pytest.param(
        False,
        lambda s: s.publish("a", change={"d": "AAAA"}),
        "publish public keys only",
        id="private-key",
    ),
    pytest.param(
        False,
        lambda s: s.publish("a", change={"p": "AAAA"}),
        "publish public keys only",
        id="private-member",
    ),
    pytest.param(
        False,
        lambda s: s.answer(200, b'{"keys": 5}'),
        "is not a JWKS document",
        id="keys-not-a-list",
    ),
    pytest.param(
        False,
        lambda s: s.publish("a", change={"kid": ""}),
        "own non-empty kid",
        id="no-kid",
    ),
    pytest.param(
        False,
        lambda s: s.publish("a", change={"alg": "RS256"}),
        "allows only ES256",
        id="alg-mismatch",
    ),
    pytest.param(False, _stop, "cannot fetch", id="nothing-listening"),
    pytest.param(
        True, lambda s: None, "CERTIFICATE_VERIFY_FAILED", id="untrusted-certificate"
    ),
]


@pytest.mark.parametrize(("with_tls", "change", "message"), STARTUP_FAILURES)
def test_unusable_jwks_url_refuses_to_start(
    serve: Callable[..., JwksServer],
    tls: Tls,
    with_tls: bool,
    change: Callable[[JwksServer], None],
    message: str,
) -> None:
    server = serve(tls.server if with_tls else None)
    change(server)

    with pytest.raises(ConfigError) as caught:
        authenticator(server, Clock())

    text = str(caught.value)
    assert f"jwt.jwks_url: {server.url}" in text or "jwt.jwks_url: cannot fetch" in text
    assert message in text
    assert "check the URL" in text


def test_unreadable_ca_file_refuses_to_start(
    serve: Callable[..., JwksServer], tls: Tls, tmp_path: Path
) -> None:
    server = serve(tls.server)
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")

    with pytest.raises(ConfigError, match=r"jwt\.jwks_ca_file: .* is not a PEM CA"):
        authenticator(server, Clock(), jwks_ca_file=junk)
    assert server.requests == 0


def test_keys_are_fetched_again_on_the_interval(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock, jwks_refresh_seconds=600)
    server.publish("b")

    clock.now += 599
    auth.authenticate(bearer(keys, "a"))
    assert server.requests == 1

    clock.now += 1
    assert reason(lambda: auth.authenticate(bearer(keys, "a"))) == "unknown kid"
    assert server.requests == 2
    assert auth.authenticate(bearer(keys, "b")).role == "web_user"


def test_refetch_of_the_same_keys_keeps_cached_identities(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock, jwks_refresh_seconds=60)
    token = bearer(keys, "a")
    first = auth.authenticate(token)

    clock.now += 60
    assert auth.authenticate(token) is first
    assert server.requests == 2


def test_withdrawn_key_stops_working_at_once_though_its_tokens_were_cached(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock)
    token = bearer(keys, "a")
    auth.authenticate(token)
    server.publish("b")

    clock.now += JWKS_UNKNOWN_KID_SECONDS
    auth.authenticate(bearer(keys, "b"))

    assert server.requests == 2
    assert reason(lambda: auth.authenticate(token)) == "unknown kid"


def test_first_token_of_a_new_key_waits_for_the_refetch_without_blocking_the_loop(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock)
    clock.now += JWKS_UNKNOWN_KID_SECONDS
    server.publish("a", "b")
    server.gate.clear()  # the JWKS server holds its answer until told

    async def scenario() -> None:
        started = time.monotonic()
        # The synchronous call only starts the refetch and answers 401.
        assert reason(lambda: auth.authenticate(bearer(keys, "b"))) == "unknown kid"
        assert time.monotonic() - started < 1
        for _ in range(100):  # the loop keeps running while the server waits
            if server.requests == 2:
                break
            await asyncio.sleep(0.01)
        assert server.requests == 2
        waiting = asyncio.ensure_future(auth.authenticate_async(bearer(keys, "b")))
        await asyncio.sleep(0.05)
        assert not waiting.done()

        server.gate.set()
        identity = await waiting
        assert identity.role == "web_user"

    asyncio.run(scenario())
    assert server.requests == 2


def test_a_flood_of_unknown_kids_causes_one_refetch_per_interval(
    serve: Callable[..., JwksServer], keys: dict[str, ec.EllipticCurvePrivateKey]
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock)
    clock.now += JWKS_UNKNOWN_KID_SECONDS
    server.publish("a", "b")
    flood = [bearer(keys, "x", f"forged-{n}") for n in range(50)]

    async def refused(headers: list[str]) -> set[str]:
        outcomes = await asyncio.gather(
            *(auth.authenticate_async(header) for header in headers),
            return_exceptions=True,
        )
        return {
            outcome.reason if isinstance(outcome, CredentialsError) else repr(outcome)
            for outcome in outcomes
        }

    async def scenario() -> None:
        assert await refused(flood) == {"unknown kid"}
        assert server.requests == 2
        assert (await auth.authenticate_async(bearer(keys, "b"))).role == "web_user"

        clock.now += JWKS_UNKNOWN_KID_SECONDS - 1
        assert await refused(flood) == {"unknown kid"}
        assert server.requests == 2

        clock.now += 1
        assert await refused(flood[:1]) == {"unknown kid"}
        assert server.requests == 3

    asyncio.run(scenario())


REFETCH_FAILURES: list[Any] = [
    pytest.param(lambda s: s.answer(500, b"oops"), "answered HTTP 500", id="error"),
    pytest.param(lambda s: s.answer(200, b"{"), "not a JWKS document", id="garbage"),
    pytest.param(
        lambda s: s.publish("b", change={"d": "AAAA"}),
        "publish public keys only",
        id="private-key",
    ),
    pytest.param(
        lambda s: s.answer(200, b'{"keys": []}'), "no signing key", id="empty"
    ),
    pytest.param(_stop, "cannot fetch", id="server-gone"),
]


@pytest.mark.parametrize(("change", "message"), REFETCH_FAILURES)
def test_failed_refetch_keeps_the_keys_and_warns_once(
    serve: Callable[..., JwksServer],
    keys: dict[str, ec.EllipticCurvePrivateKey],
    caplog: pytest.LogCaptureFixture,
    change: Callable[[JwksServer], None],
    message: str,
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock, jwks_refresh_seconds=60)
    change(server)
    token = bearer(keys, "a")

    clock.now += 60
    first = auth.authenticate(token)
    again = auth.authenticate(bearer(keys, "a", typ="JWT"))

    assert (first.role, again.role) == ("web_user", "web_user")
    [warning] = warnings_in(caplog)
    assert "keeping the 1 key(s) in use" in warning
    assert message in warning
    assert token.split()[1] not in caplog.text


def test_failed_refetch_in_the_event_loop_keeps_the_keys(
    serve: Callable[..., JwksServer],
    keys: dict[str, ec.EllipticCurvePrivateKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = serve()
    clock = Clock()
    auth = authenticator(server, clock)
    clock.now += JWKS_UNKNOWN_KID_SECONDS
    server.answer(503, b"")

    async def scenario() -> None:
        unknown = bearer(keys, "b")
        with pytest.raises(CredentialsError, match="invalid token"):
            await auth.authenticate_async(unknown)
        assert (await auth.authenticate_async(bearer(keys, "a"))).role == "web_user"

    asyncio.run(scenario())
    assert server.requests == 2
    assert len(warnings_in(caplog)) == 1


@pytest.fixture
def gateway_config(tmp_path: Path) -> dict[str, Any]:
    for name, text in {"password": "x", "ca.crt": "x", "secret": "s" * 32}.items():
        (tmp_path / name).write_text(text + "\n")
        (tmp_path / name).chmod(0o600)
    return {
        "database": {
            "host": "db1.lab.example",
            "dbname": "app",
            "user": "authenticator",
            "password_file": str(tmp_path / "password"),
            "sslrootcert": str(tmp_path / "ca.crt"),
        },
        "api": {"schema": "api"},
        "jwt": {},
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.net/.well-known/jwks.json",
        "https://idp.example.net:8443/keys?tenant=t1",
        "http://127.0.0.1:8080/jwks.json",
        "http://[::1]:8080/jwks.json",
        "http://localhost/jwks.json",
    ],
)
def test_jwks_url_shapes_that_are_accepted(
    gateway_config: dict[str, Any], url: str
) -> None:
    gateway_config["jwt"] = {"jwks_url": url}

    config = config_from_mapping(gateway_config)

    assert (config.jwt.jwks_url, config.jwt.jwks_refresh_seconds) == (url, 300)


BAD_JWT_SETTINGS: list[Any] = [
    ({"jwks_url": "http://idp.example.net/jwks"}, "jwt.jwks_url: 'http://idp.example"),
    ({"jwks_url": "http://idp.example.net/jwks"}, "use https://"),
    ({"jwks_url": "http://127.0.0.2/jwks"}, "only for 127.0.0.1, ::1 and localhost"),
    ({"jwks_url": "ftp://127.0.0.1/jwks"}, "not an https:// URL"),
    ({"jwks_url": "file:///etc/jwks.json"}, "not an https:// URL"),
    ({"jwks_url": "https:///jwks.json"}, "with a host"),
    ({"jwks_url": "https://idp.example.net:port/"}, "not a URL"),
    ({"jwks_url": "https://idp.example.net/jwks#k1"}, "#fragment"),
    ({"jwks_url": "https://idp.example.net/ jwks"}, "spaces or control"),
    ({"jwks_url": "https://u:hunter2@idp.example.net/"}, "holds credentials"),
    (
        {"jwks_url": "https://idp.example.net/", "secret_file": "@secret"},
        "remove all but one of secret_file, jwks_url",
    ),
    (
        {"secret_file": "@secret", "jwks_ca_file": "@ca.crt"},
        "jwt: jwks_ca_file only applies to jwks_url",
    ),
    (
        {"secret_file": "@secret", "jwks_refresh_seconds": 300},
        "jwt: jwks_refresh_seconds only applies to jwks_url",
    ),
    (
        {"jwks_url": "http://127.0.0.1/jwks", "jwks_ca_file": "@ca.crt"},
        "jwks_ca_file needs an https:// jwks_url",
    ),
    (
        {"jwks_url": "https://idp.example.net/", "jwks_refresh_seconds": 5},
        "jwt.jwks_refresh_seconds",
    ),
    (
        {"jwks_url": "https://idp.example.net/", "jwks_refresh_seconds": 10**6},
        "jwt.jwks_refresh_seconds",
    ),
]


@pytest.mark.parametrize(
    ("settings", "message"),
    BAD_JWT_SETTINGS,
    ids=[f"{sorted(s.items())}" for s, _ in BAD_JWT_SETTINGS],
)
def test_bad_jwks_url_settings_are_named_with_their_fix(
    gateway_config: dict[str, Any],
    tmp_path: Path,
    settings: dict[str, Any],
    message: str,
) -> None:
    gateway_config["jwt"] = {
        key: str(tmp_path / value[1:])
        if isinstance(value, str) and value.startswith("@")
        else value
        for key, value in settings.items()
    }

    with pytest.raises(ConfigError) as caught:
        config_from_mapping(gateway_config)

    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)
