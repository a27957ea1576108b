"""What an inventory says about a gateway host, checked before any host is touched.

Keys start with ``gateway_``; like ``postgres_`` keys they are flat so group
data can hold the API policy and host data the addresses.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import SpecError

__all__ = ["GatewayHostSpec", "GatewayJwt", "gateway_from_host_data"]

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SIGNING_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
_RATE = re.compile(r"^\d+/(second|minute|hour|day)(;\d+/(second|minute|hour|day))*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayDatabase(_Strict):
    host: str
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str
    user: str = "authenticator"
    password_secret: str = Field(
        description="name in the secret store, e.g. db1/authenticator"
    )
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=10, ge=1, le=100)


class GatewayApi(_Strict):
    schema_name: str = Field(default="api", alias="schema")
    anonymous_role: str | None = None
    allowed_roles: list[str] = Field(default_factory=list)
    max_rows: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=1 << 20, ge=1)
    statement_timeout_ms: int = Field(default=10_000, ge=1)

    @field_validator("allowed_roles")
    @classmethod
    def _roles(cls, roles: list[str]) -> list[str]:
        for role in roles:
            if not _ROLE.match(role) or role.startswith("pg_"):
                raise ValueError(f"{role!r} is not a plain database role name")
        return roles


class GatewayLimits(_Strict):
    """Rate limits; counters in memory, or in a Redis several gateways share."""

    per_subject: str = "60/minute"
    per_address: str = "120/minute"
    redis_host: str | None = None
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_password_secret: str | None = None

    @model_validator(mode="after")
    def _redis(self) -> GatewayLimits:
        if (self.redis_host is None) != (self.redis_password_secret is None):
            raise ValueError(
                "redis_host and redis_password_secret go together: name the Redis "
                "host and the secret-store entry of its password, or neither"
            )
        return self

    @field_validator("per_subject", "per_address")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not _RATE.match(value):
            raise ValueError(f"{value!r} is not a rate such as 60/minute")
        return value


class GatewayJwt(_Strict):
    """Where the gateway's token keys come from.

    Nothing given: an HS256 secret generated into the secret store
    (``gateway/jwt-secret``), which ``pgfortress token`` signs with. Otherwise
    one of ``jwks_url`` (your identity provider's key set, https) or
    ``public_key_file`` (a PEM public key on the control machine, uploaded).
    """

    jwks_url: str | None = None
    jwks_ca_file: Path | None = None
    public_key_file: Path | None = None
    audience: str | None = Field(default=None, min_length=1)
    issuer: str | None = Field(default=None, min_length=1)

    @field_validator("jwks_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"{value!r} is not an https:// URL with a host")
        if parts.username or parts.password or parts.fragment:
            raise ValueError("give the URL without credentials or #fragment")
        return value

    @field_validator("public_key_file")
    @classmethod
    def _public_key(cls, path: Path | None) -> Path | None:
        if path is not None:
            text = _read(path)
            try:
                key = serialization.load_pem_public_key(text)
            except ValueError:
                raise ValueError(
                    f"{path} is not a PEM public key; give the provider's public "
                    "key (-----BEGIN PUBLIC KEY-----), never a private one"
                ) from None
            if not isinstance(key, _SIGNING_KEYS):
                raise ValueError(f"{path}: use an RSA, EC or Ed25519 public key")
        return path

    @field_validator("jwks_ca_file")
    @classmethod
    def _ca(cls, path: Path | None) -> Path | None:
        if path is not None:
            text = _read(path)
            try:
                x509.load_pem_x509_certificate(text)
            except ValueError:
                raise ValueError(f"{path} is not a PEM certificate") from None
        return path

    @model_validator(mode="after")
    def _one_source(self) -> GatewayJwt:
        if self.jwks_url and self.public_key_file:
            raise ValueError("give jwks_url or public_key_file, not both")
        if self.jwks_ca_file and not self.jwks_url:
            raise ValueError("jwks_ca_file goes with jwks_url; add the URL")
        return self

    @property
    def generated_secret(self) -> bool:
        return self.jwks_url is None and self.public_key_file is None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {error.strerror}") from None


class GatewayHostSpec(_Strict):
    host: str
    database: GatewayDatabase
    api: GatewayApi = Field(default_factory=GatewayApi)
    role_claim: str = ".role"
    jwt: GatewayJwt = Field(default_factory=GatewayJwt)
    cors_origins: list[str] = Field(default_factory=list)
    limits: GatewayLimits = Field(default_factory=GatewayLimits)
    listen: str
    port: int = Field(default=8443, ge=1024, le=65535)
    metrics_port: int = Field(default=9187, ge=1024, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    ca_dir: Path
    dns_names: list[str] = Field(default_factory=list)
    allowed_networks: list[str] = Field(default_factory=list)
    secrets_dir: Path
    start: bool = True
    """False: install, configure and enable the service, but leave it stopped
    (an image bake: the database it names is not there yet)."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an address; name the address of this host the "
                "gateway listens on"
            ) from None
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=True)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a network in CIDR form such as 10.0.0.0/24"
                ) from None
        return values


_KEYS = {
    "gateway_database": "database",
    "gateway_api": "api",
    "gateway_role_claim": "role_claim",
    "gateway_jwt": "jwt",
    "gateway_cors_origins": "cors_origins",
    "gateway_limits": "limits",
    "gateway_listen": "listen",
    "gateway_port": "port",
    "gateway_metrics_port": "metrics_port",
    "gateway_workers": "workers",
    "gateway_ca_dir": "ca_dir",
    "gateway_dns_names": "dns_names",
    "gateway_allowed_networks": "allowed_networks",
    "gateway_start": "start",
    "pgfortress_secrets_dir": "secrets_dir",
}
_FIELDS = {field: key for key, field in _KEYS.items()}


def gateway_from_host_data(host: str, data: Mapping[str, Any]) -> GatewayHostSpec:
    """Validate one gateway host's data, or raise SpecError naming the fix."""
    for key in data:
        if key.startswith("gateway_") and key not in _KEYS:
            close = difflib.get_close_matches(key, list(_KEYS), n=1)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else "see docs/reference/gateway.md"
            )
            raise SpecError(f"host {host}: {key}: unknown key; {hint}")
    values = {field: data[key] for key, field in _KEYS.items() if key in data}
    try:
        return GatewayHostSpec(host=host, **values)
    except ValidationError as error:
        lines = []
        for item in error.errors(include_url=False, include_input=False):
            loc = [str(part) for part in item["loc"]]
            where = ".".join([_FIELDS.get(loc[0], loc[0]), *loc[1:]]) if loc else "?"
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "is required; see docs/reference/gateway.md"
            lines.append(f"host {host}: {where}: {message}")
        raise SpecError("\n".join(lines)) from None
