"""JWT signing keys from a JWKS: the document checked, fetched and refreshed.

A JWKS document, from ``jwt.jwks_file`` or ``jwt.jwks_url``, must name every
key with ``kid`` and hold public signing keys only; the type of each key
decides the one algorithm it is used with.

A JWKS URL is fetched once at start, and the gateway refuses to start without
it. A token checked once ``jwt.jwks_refresh_seconds`` have passed starts a
refetch, and so does a token naming a ``kid`` the gateway does not know (a new
signing key), at most once per :data:`JWKS_UNKNOWN_KID_SECONDS` however many
such tokens arrive. Refetches run in a worker thread, so the event loop never
waits; a failed one keeps the keys in use and logs one warning. The fetch
follows no redirect and no proxy from the environment, and checks TLS against
the system's trust store or ``jwt.jwks_ca_file``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .config import ConfigError, JwtConfig

__all__ = [
    "JWKS_MAX_BYTES",
    "JWKS_TIMEOUT_SECONDS",
    "JWKS_UNKNOWN_KID_SECONDS",
    "JwksUrl",
    "Key",
    "KeySet",
    "Keys",
    "algorithm_for",
    "jwks_keys",
    "jwks_url",
]

logger = logging.getLogger("pgfortress_gateway")

JWKS_UNKNOWN_KID_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 2**20
# Members only a private or secret JWK has (RFC 7518, section 6).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class Key:
    """A verification key and the one algorithm its type allows."""

    key: Any
    algorithm: str


# Keys by kid; None names the single key of a secret or a PEM file.
Keys = dict[str | None, Key]


def algorithm_for(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"RSA key of {key.key_size} bits; use at least 2048")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise ValueError(f"elliptic curve {key.curve.name} is not supported")
        return _CURVES[key.curve.name]
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    raise ValueError(f"unsupported public key type {type(key).__name__}")


def jwks_keys(data: bytes, source: str) -> Keys:
    """Check a JWKS document, read from a file or a URL named by ``source``."""
    try:
        entries = json.loads(data)["keys"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list):
        raise ValueError(f"{source} is not a JWKS document with a keys list")
    keys: Keys = {}
    for entry in entries:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if not isinstance(kid, str) or not kid or kid in keys:
            raise ValueError(f"{source}: every key needs its own non-empty kid")
        if _PRIVATE_MEMBERS & entry.keys() or entry.get("kty") == "oct":
            raise ValueError(
                f"{source}: key {kid!r} is secret or private; publish public keys only"
            )
        if entry.get("use", "sig") != "sig":
            continue
        try:
            # The type of the key decides its algorithm; "alg" is checked below.
            key = jwt.PyJWK({k: v for k, v in entry.items() if k != "alg"}).key
        except jwt.PyJWTError as exc:
            raise ValueError(f"{source}: key {kid!r} cannot be used: {exc}") from None
        algorithm = algorithm_for(key)
        if entry.get("alg", algorithm) != algorithm:
            raise ValueError(
                f"{source}: key {kid!r} says alg {entry['alg']}, but its type "
                f"allows only {algorithm}"
            )
        keys[kid] = Key(key, algorithm)
    if not keys:
        raise ValueError(f"{source} holds no signing key")
    return keys


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere, plain http included: answer it as an error."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


class JwksUrl:
    """Where a JWKS is downloaded from, and how (TLS trust, no proxy, no redirect)."""

    def __init__(self, url: str, ca_file: Path | None) -> None:
        self.url = url
        # Logs and errors leave out the query string, which might hold a secret.
        self.shown = urlsplit(url)._replace(query="", fragment="").geturl()
        context = ssl.create_default_context(
            cafile=None if ca_file is None else str(ca_file)
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            _NoRedirects(),
            urllib.request.HTTPSHandler(context=context),
        )

    def fetch(self) -> Keys:
        """Download and check the key set; blocks, so the event loop uses a thread."""
        # The scheme is http(s) only: config refuses others, redirects are refused.
        request = urllib.request.Request(  # noqa: S310
            self.url,
            headers={
                "Accept": "application/jwk-set+json, application/json",
                "User-Agent": "pgfortress-gateway",
            },
        )
        try:
            with self._opener.open(request, timeout=JWKS_TIMEOUT_SECONDS) as answer:
                data: bytes = answer.read(JWKS_MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            hint = "; redirects are not followed: give the final URL"
            raise ValueError(
                f"{self.shown} answered HTTP {exc.code}"
                + (hint if 300 <= exc.code < 400 else "")
            ) from None
        except urllib.error.URLError as exc:
            raise ValueError(f"cannot fetch {self.shown}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ValueError(f"cannot fetch {self.shown}: {exc!r}") from None
        if len(data) > JWKS_MAX_BYTES:
            raise ValueError(f"{self.shown} sent more than {JWKS_MAX_BYTES} bytes")
        return jwks_keys(data, self.shown)


def jwks_url(config: JwtConfig) -> JwksUrl | None:
    if config.jwks_url is None:
        return None
    try:
        return JwksUrl(config.jwks_url, config.jwks_ca_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [f"jwt.jwks_ca_file: {config.jwks_ca_file} is not a PEM CA file: {exc}"]
        ) from None


def _fetch_quietly(url: JwksUrl) -> Keys | Exception:
    """The new keys, or why there are none; a refetch must never raise."""
    try:
        return url.fetch()
    except Exception as exc:  # whatever failed, the keys in use stay
        return exc


class KeySet:
    """The keys in use and, with a JWKS URL, when they are fetched again.

    Used from the event loop's thread only. A due refetch runs as a task in a
    worker thread, and its keys are put in place on the loop's thread, where
    ``on_change`` is called when they differ. Outside any event loop (tools,
    tests) the refetch runs inline instead. ``keys`` and ``refreshing`` (the
    refetch under way, if any) are for reading.
    """

    def __init__(
        self,
        keys: Keys,
        url: JwksUrl | None,
        *,
        refresh_seconds: int,
        clock: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        self.keys = keys
        self.url = url
        self.refreshing: asyncio.Task[None] | None = None
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._fetched_at = clock()
        self._on_change = on_change

    def find(self, kid: str) -> Key | None:
        """The key named ``kid``; an unknown one may be a new signing key.

        Outside an event loop a due refetch happens at once; inside one it
        starts a task whose keys serve later tokens.
        """
        if kid not in self.keys:
            self.refresh_if_due(unknown_kid=True)
        return self.keys.get(kid)

    def refresh_if_due(self, *, unknown_kid: bool) -> None:
        url = self.url
        busy = self.refreshing is not None and not self.refreshing.done()
        if url is None or busy:
            return
        now = self._clock()
        wait = JWKS_UNKNOWN_KID_SECONDS if unknown_kid else self._refresh_seconds
        # A clock set backwards counts as due, or no refetch would come for hours.
        if 0 <= now - self._fetched_at < wait:
            return
        self._fetched_at = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._take(url, _fetch_quietly(url))
            return
        self.refreshing = loop.create_task(self._refresh(url))

    async def _refresh(self, url: JwksUrl) -> None:
        self._take(url, await asyncio.to_thread(_fetch_quietly, url))

    def _take(self, url: JwksUrl, outcome: Keys | Exception) -> None:
        if isinstance(outcome, Exception):
            logger.warning(
                "JWKS refetch failed, keeping the %d key(s) in use: %s",
                len(self.keys),
                outcome if isinstance(outcome, ValueError) else repr(outcome),
            )
            return
        if outcome == self.keys:
            return
        self.keys = outcome
        self._on_change()
        logger.info("keys from %s changed: now %d key(s)", url.shown, len(outcome))
