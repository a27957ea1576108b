"""Who is calling: a bearer JWT, an API key, or nobody (the anonymous role).

The algorithm a token is checked with comes from the configured key, never
from the token: an HS256 secret allows HS256 only, an RSA key RS256, a P-256
key ES256, an Ed25519 key EdDSA. So ``alg: none`` and a token MAC'd with the
RSA public key as an HMAC secret both fail before any signature is computed.

The client always hears a generic message ("invalid token"); the precise
reason travels on the exception as ``reason`` for the audit line. Neither
ever contains the token; :func:`token_fingerprint` gives a short hash when
two log lines must be tied to the same token.

A JWKS URL (``jwt.jwks_url``) is fetched once at start, and the gateway
refuses to start without it. A token checked once ``jwt.jwks_refresh_seconds``
have passed starts a refetch, and so does a token naming a ``kid`` the gateway
does not know (a new signing key), at most once per
:data:`JWKS_UNKNOWN_KID_SECONDS` however many such tokens arrive. Refetches
run in a worker thread, so the event loop never waits; a failed one keeps the
keys in use and logs one warning. The fetch follows no redirect and no proxy
from the environment, and checks TLS against the system's trust store or
``jwt.jwks_ca_file``.

Deliberate differences from PostgREST:

- a token without the role claim is refused (401) instead of running as the
  anonymous role: it was most likely minted for another service;
- ``exp`` is required unless ``jwt.require_exp = false``;
- ``aud`` is checked only when ``jwt.audience`` is configured;
- sending both a token and an API key is refused as ambiguous;
- a JWKS must name every key with ``kid`` and tokens must carry it;
- ``exp``, ``nbf`` and ``iat`` must be JSON numbers (PyJWT alone also takes
  strings such as ``"9999999999"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import math
import re
import ssl
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from .config import (
    ApiKeyConfig,
    ConfigError,
    GatewayConfig,
    JwtConfig,
    check_role_name,
)
from .errors import AuthError, ForbiddenError

__all__ = [
    "Authenticator",
    "CredentialsError",
    "Identity",
    "RoleNotAllowedError",
    "token_fingerprint",
]

logger = logging.getLogger("pgfortress_gateway")

MAX_CACHE_SECONDS = 300
MAX_API_KEY_LENGTH = 512
JWKS_UNKNOWN_KID_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_MAX_BYTES = 2**20
_TIME_CLAIMS = ("exp", "nbf", "iat")
# Members only a private or secret JWK has (RFC 7518, section 6).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.MissingRequiredClaimError, "required claim missing"),
    (jwt.InvalidIssuedAtError, "claim iat is not a number"),
    (jwt.DecodeError, "malformed token"),
)

Kind = Literal["anonymous", "jwt", "api_key"]


class CredentialsError(AuthError):
    """401 with a generic message; ``reason`` is for the audit log only."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _UnknownKeyError(CredentialsError):
    """401 for a token whose ``kid`` is not (yet) in the key set."""


class RoleNotAllowedError(ForbiddenError):
    """403: the credentials are valid but name a role the gateway won't use."""

    def __init__(self, *, reason: str) -> None:
        super().__init__("role not allowed")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """The outcome of authentication; ``claims_json`` feeds request.jwt.claims.

    Identities are cached and shared between requests: ``claims`` is a
    read-only view, and its nested values must not be changed either.
    """

    role: str
    subject: str | None
    claims: Mapping[str, Any] = field(repr=False)
    kind: Kind = "jwt"
    claims_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        text = json.dumps(dict(self.claims), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))
        object.__setattr__(self, "claims_json", text)


@dataclass(frozen=True, slots=True)
class _Key:
    key: Any
    algorithm: str


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token, safe to log."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _algorithm_for(key: object) -> str:
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


def _pem_key(path: Path) -> _Key:
    data = path.read_bytes()
    if b"PRIVATE KEY" in data:
        raise ValueError(
            f"{path} holds a private key; give only the public half "
            "(openssl pkey -in KEY -pubout)"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError(f"{path} is not a PEM public key") from None
    return _Key(key, _algorithm_for(key))


def _jwks_keys(data: bytes, source: str) -> dict[str | None, _Key]:
    """Check a JWKS document, read from a file or a URL named by ``source``."""
    try:
        entries = json.loads(data)["keys"]
    except (ValueError, KeyError, TypeError):
        entries = None
    if not isinstance(entries, list):
        raise ValueError(f"{source} is not a JWKS document with a keys list")
    keys: dict[str | None, _Key] = {}
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
        algorithm = _algorithm_for(key)
        if entry.get("alg", algorithm) != algorithm:
            raise ValueError(
                f"{source}: key {kid!r} says alg {entry['alg']}, but its type "
                f"allows only {algorithm}"
            )
        keys[kid] = _Key(key, algorithm)
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


class _JwksUrl:
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

    def fetch(self) -> dict[str | None, _Key]:
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
        return _jwks_keys(data, self.shown)


def _jwks_url(config: JwtConfig) -> _JwksUrl | None:
    if config.jwks_url is None:
        return None
    try:
        return _JwksUrl(config.jwks_url, config.jwks_ca_file)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            [f"jwt.jwks_ca_file: {config.jwks_ca_file} is not a PEM CA file: {exc}"]
        ) from None


def _load_keys(config: JwtConfig, url: _JwksUrl | None) -> dict[str | None, _Key]:
    if url is not None:
        try:
            return url.fetch()
        except ValueError as exc:
            raise ConfigError(
                [
                    f"jwt.jwks_url: {exc}; the gateway needs its keys to start: "
                    "check the URL, that this host may reach it, and "
                    "jwt.jwks_ca_file if a private CA signed its certificate"
                ]
            ) from None
    try:
        if config.public_key_file is not None:
            return {None: _pem_key(config.public_key_file)}
        if config.jwks_file is not None:
            path = config.jwks_file
            return _jwks_keys(path.read_bytes(), str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"jwt: {exc}"]) from None
    return {None: _Key(config.secret, "HS256")}


def _fetch_quietly(url: _JwksUrl) -> dict[str | None, _Key] | Exception:
    """The new keys, or why there are none; a refetch must never raise."""
    try:
        return url.fetch()
    except Exception as exc:  # whatever failed, the keys in use stay
        return exc


def _is_numeric_date(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _claim(claims: Mapping[str, Any], path: Sequence[str]) -> object:
    value: object = claims
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


class Authenticator:
    """Turns request credentials into an :class:`Identity`, or refuses them.

    Meant to be called from the event loop's thread: the token cache is a
    plain ordered dict without a lock. Verification is CPU work of tens of
    microseconds, done inline; a cache hit costs one SHA-256 of the token.

    With a JWKS URL, a due refetch runs as a task in a worker thread and its
    keys are put in place on the loop's thread. Called outside any event loop
    (tools, tests), the refetch runs inline instead.
    """

    def __init__(
        self,
        config: JwtConfig,
        *,
        anonymous_role: str | None = None,
        api_keys: Sequence[ApiKeyConfig] = (),
        allowed_roles: Collection[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._jwks_url = _jwks_url(config)
        self._keys = _load_keys(config, self._jwks_url)
        self._fetched_at = clock()
        self._refreshing: asyncio.Task[None] | None = None
        self._claim_path = config.claim_path
        self._anonymous = (
            None
            if anonymous_role is None
            else Identity(anonymous_role, None, {"role": anonymous_role}, "anonymous")
        )
        self._api_keys = [
            (bytes.fromhex(key.sha256), key.name, key.role) for key in api_keys
        ]
        self._allowed = frozenset(allowed_roles)
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()
        logger.info(
            "authenticator ready: %s, %d key(s), %d API key(s)",
            ", ".join(sorted({key.algorithm for key in self._keys.values()})),
            len(self._keys),
            len(self._api_keys),
        )
        if self._jwks_url is not None:
            logger.info(
                "keys from %s, fetched again every %d s",
                self._jwks_url.shown,
                config.jwks_refresh_seconds,
            )

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Authenticator:
        return cls(
            config.jwt,
            anonymous_role=config.api.anonymous_role,
            api_keys=config.api_keys,
            allowed_roles=config.api.allowed_roles,
        )

    def authenticate(
        self, authorization_header: str | None, api_key_header: str | None = None
    ) -> Identity:
        if authorization_header is not None and api_key_header is not None:
            raise CredentialsError(
                "send a token or an API key, not both",
                reason="both a token and an API key were sent",
            )
        if api_key_header is not None:
            return self._api_key(api_key_header)
        if authorization_header is None:
            if self._anonymous is None:
                raise CredentialsError(
                    "authentication required", reason="no credentials"
                )
            return self._anonymous
        return self._bearer(authorization_header)

    async def authenticate_async(
        self, authorization_header: str | None, api_key_header: str | None = None
    ) -> Identity:
        """:meth:`authenticate`, but a token naming an unknown ``kid`` waits.

        If a JWKS refetch is under way (the token may have started it), the
        token is checked again once it ends, so the first token signed with a
        new key is accepted. The wait is bounded by the fetch's timeout.
        """
        try:
            return self.authenticate(authorization_header, api_key_header)
        except _UnknownKeyError:
            refreshing = self._refreshing
            if refreshing is None or refreshing.done():
                raise
        # Shielded: a caller that goes away must not cancel everyone's refetch.
        await asyncio.shield(refreshing)
        return self.authenticate(authorization_header, api_key_header)

    def _api_key(self, presented: str) -> Identity:
        if not presented or len(presented) > MAX_API_KEY_LENGTH:
            raise CredentialsError("invalid API key", reason="malformed API key")
        digest = hashlib.sha256(presented.encode()).digest()
        found: tuple[str, str] | None = None
        for expected, name, role in self._api_keys:
            # Compare with every key, so timing does not tell which one is close.
            if hmac.compare_digest(digest, expected):
                found = (name, role)
        if found is None:
            raise CredentialsError("invalid API key", reason="unknown API key")
        name, role = found
        subject = f"apikey:{name}"
        return Identity(role, subject, {"role": role, "sub": subject}, "api_key")

    def _bearer(self, header: str) -> Identity:
        if len(header) > self._config.max_token_bytes + len("Bearer "):
            raise self._invalid("token too long")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise self._invalid("not a bearer token")
        if not _JWT_SHAPE.fullmatch(token):
            raise self._invalid("malformed authorization header")
        self._refresh_keys_if_due(unknown_kid=False)

        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            identity, expires = cached
            if self._clock() < expires:
                self._cache.move_to_end(key)
                return identity
            del self._cache[key]

        identity, expires = self._verify(token)
        self._remember(key, identity, expires)
        return identity

    def _verify(self, token: str) -> tuple[Identity, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._invalid("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() == "none":
            raise self._invalid("unsigned token (alg none)")
        if None in self._keys:
            key = self._keys[None]
        else:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise self._invalid("missing kid")
            if kid not in self._keys:
                # Perhaps a new signing key: outside an event loop this
                # refetches at once, else it starts a task for later tokens.
                self._refresh_keys_if_due(unknown_kid=True)
            if kid not in self._keys:
                raise _UnknownKeyError("invalid token", reason="unknown kid")
            key = self._keys[kid]
        if algorithm != key.algorithm:
            raise self._invalid(f"algorithm {algorithm[:10]} not allowed")

        claims = self._decode(token, key)
        for name in _TIME_CLAIMS:
            if name in claims and not _is_numeric_date(claims[name]):
                raise self._invalid(f"claim {name} is not a number")
        role = _claim(claims, self._claim_path)
        if role is None:
            raise self._invalid("role claim missing")
        if not isinstance(role, str):
            raise self._invalid("role claim is not a string")
        try:
            check_role_name(role)
        except ValueError:
            raise self._invalid("role claim is not a plain role name") from None
        if self._allowed and role not in self._allowed:
            raise RoleNotAllowedError(reason=f"role {role} is not in api.allowed_roles")

        subject = claims.get("sub")
        identity = Identity(role, subject if isinstance(subject, str) else None, claims)
        return identity, self._expiry(claims)

    def _decode(self, token: str, key: _Key) -> dict[str, Any]:
        config = self._config
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway,
                options={
                    "require": ["exp"] if config.require_exp else [],
                    "verify_aud": config.audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            reason = next(
                (text for kind, text in _REASONS if isinstance(exc, kind)),
                f"rejected by verification ({type(exc).__name__})",
            )
            raise self._invalid(reason) from None
        except (TypeError, OverflowError) as exc:
            # A claim of an unexpected JSON type must end in a 401, whatever
            # a given PyJWT release raises for it.
            raise self._invalid(f"malformed token ({type(exc).__name__})") from None

    def _refresh_keys_if_due(self, *, unknown_kid: bool) -> None:
        url = self._jwks_url
        busy = self._refreshing is not None and not self._refreshing.done()
        if url is None or busy:
            return
        now = self._clock()
        wait = (
            JWKS_UNKNOWN_KID_SECONDS
            if unknown_kid
            else self._config.jwks_refresh_seconds
        )
        # A clock set backwards counts as due, or no refetch would come for hours.
        if 0 <= now - self._fetched_at < wait:
            return
        self._fetched_at = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._take_keys(url, _fetch_quietly(url))
            return
        self._refreshing = loop.create_task(self._refresh_keys(url))

    async def _refresh_keys(self, url: _JwksUrl) -> None:
        self._take_keys(url, await asyncio.to_thread(_fetch_quietly, url))

    def _take_keys(
        self, url: _JwksUrl, outcome: dict[str | None, _Key] | Exception
    ) -> None:
        if isinstance(outcome, Exception):
            logger.warning(
                "JWKS refetch failed, keeping the %d key(s) in use: %s",
                len(self._keys),
                outcome if isinstance(outcome, ValueError) else repr(outcome),
            )
            return
        if outcome == self._keys:
            return
        self._keys = outcome
        # An identity verified with a key the issuer withdrew must not outlive it.
        self._cache.clear()
        logger.info("keys from %s changed: now %d key(s)", url.shown, len(outcome))

    def _expiry(self, claims: Mapping[str, Any]) -> float:
        limit = self._clock() + MAX_CACHE_SECONDS
        exp = claims.get("exp")
        if isinstance(exp, int | float) and not isinstance(exp, bool):
            return min(float(exp), limit)
        return limit

    def _remember(self, key: bytes, identity: Identity, expires: float) -> None:
        size = self._config.cache_size
        if size == 0 or expires <= self._clock():
            return
        self._cache[key] = (identity, expires)
        while len(self._cache) > size:
            self._cache.popitem(last=False)

    @staticmethod
    def _invalid(reason: str) -> CredentialsError:
        return CredentialsError("invalid token", reason=reason)
