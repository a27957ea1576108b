"""Who is calling: a bearer JWT, an API key, or nobody (the anonymous role).

The algorithm a token is checked with comes from the configured key, never
from the token: an HS256 secret allows HS256 only, an RSA key RS256, a P-256
key ES256, an Ed25519 key EdDSA. So ``alg: none`` and a token MAC'd with the
RSA public key as an HMAC secret both fail before any signature is computed.

The client always hears a generic message ("invalid token"); the precise
reason travels on the exception as ``reason`` for the audit line. Neither
ever contains the token; :func:`token_fingerprint` gives a short hash when
two log lines must be tied to the same token.

The keys come from the HS256 secret, a PEM public key, a JWKS file or a
JWKS URL (``jwt.jwks_url``); how a JWKS is checked, fetched and refreshed is
told in :mod:`._jwks`.

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
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization

from ._jwks import JwksUrl, Key, Keys, KeySet, algorithm_for, jwks_keys, jwks_url
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
_TIME_CLAIMS = ("exp", "nbf", "iat")
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
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


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token, safe to log."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _pem_key(path: Path) -> Key:
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
    return Key(key, algorithm_for(key))


def _load_keys(config: JwtConfig, url: JwksUrl | None) -> Keys:
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
            return jwks_keys(path.read_bytes(), str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError([f"jwt: {exc}"]) from None
    return {None: Key(config.secret, "HS256")}


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
        url = jwks_url(config)
        keys = _load_keys(config, url)
        self._cache: OrderedDict[bytes, tuple[Identity, float]] = OrderedDict()
        # An identity verified with a key the issuer withdrew must not outlive it.
        self._key_set = KeySet(
            keys,
            url,
            refresh_seconds=config.jwks_refresh_seconds,
            clock=clock,
            on_change=self._cache.clear,
        )
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
        logger.info(
            "authenticator ready: %s, %d key(s), %d API key(s)",
            ", ".join(sorted({key.algorithm for key in keys.values()})),
            len(keys),
            len(self._api_keys),
        )
        if url is not None:
            logger.info(
                "keys from %s, fetched again every %d s",
                url.shown,
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
            refreshing = self._key_set.refreshing
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
        self._key_set.refresh_if_due(unknown_kid=False)

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
        key = self._key_set.keys.get(None)
        if key is None:
            kid = header.get("kid")
            if not isinstance(kid, str):
                raise self._invalid("missing kid")
            key = self._key_set.find(kid)
            if key is None:
                raise _UnknownKeyError("invalid token", reason="unknown kid")
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

    def _decode(self, token: str, key: Key) -> dict[str, Any]:
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
