"""The gateway's configuration: one TOML file, validated before anything starts.

Every mistake is reported as a :class:`ConfigError` naming the key in dotted
form (``jwt.leeway``) and saying how to fix it. Paths must be absolute, since
a service's working directory is not something an operator should rely on.

Secret files (the database password, the HS256 secret, the TLS private key)
are checked at load time: a regular file with no permission beyond ``0640``
(so ``0600``, ``0640``, ``0400`` or ``0440``). The password and the HS256
secret are read once, here, and kept out of ``repr()`` and ``model_dump()``;
one trailing newline (as ``echo`` writes it) is not part of the secret.
"""

from __future__ import annotations

import ipaddress
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

import limits
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

__all__ = [
    "ApiConfig",
    "ApiKeyConfig",
    "ConfigError",
    "CorsConfig",
    "DatabaseConfig",
    "GatewayConfig",
    "JwtConfig",
    "LimitsConfig",
    "ServerConfig",
    "check_role_name",
    "config_from_mapping",
    "load_config",
    "parse_claim_path",
    "read_secret_file",
]

MIN_HS256_SECRET = 32
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_ORIGIN = re.compile(
    r"https?://(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?"
)
_CLAIM_STEP = re.compile(r'\.(?:([A-Za-z_][A-Za-z0-9_-]*)|"([^"\\]+)")')
# Plain http is allowed for these only, so a test or a local sidecar can serve keys.
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_STORAGE_SCHEMES = frozenset(
    {"memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"}
)


class ConfigError(ValueError):
    """The configuration cannot be used; ``problems`` lists each mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid gateway configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def check_role_name(name: str) -> str:
    """Return ``name`` if it is a plain, unquoted PostgreSQL role name.

    Predefined ``pg_*`` roles are refused: no request should ever run as one.
    """
    if not _ROLE.fullmatch(name) or name.startswith("pg_"):
        raise ValueError(
            f"{name!r} is not a plain role name: use lowercase letters, digits "
            "and underscores, at most 63 characters, not starting with pg_"
        )
    return name


def parse_claim_path(text: str) -> tuple[str, ...]:
    """Split a claim path such as ``.app_metadata.role`` into its keys.

    A key that is not a plain name is written in double quotes, as in
    ``."https://example.com/claims".role``.
    """
    keys: list[str] = []
    position = 0
    while position < len(text):
        step = _CLAIM_STEP.match(text, position)
        if step is None:
            break
        keys.append(step.group(1) or step.group(2))
        position = step.end()
    if not keys or position != len(text):
        raise ValueError(
            f"{text!r} is not a claim path: write it like .role or .app_metadata.role"
        )
    return tuple(keys)


def read_secret_file(path: Path) -> bytes:
    """Read a secret after checking that nobody but its owner and group can."""
    try:
        status = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{path} is not a regular file")
    mode = stat.S_IMODE(status.st_mode)
    if mode & ~0o640:
        raise ValueError(
            f"{path} has mode {mode:04o}, which lets others read or change it; "
            f"run: chmod 0640 {path}"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def _secret(path: Path, key: str) -> bytes:
    try:
        return read_secret_file(path).rstrip(b"\r\n")
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _absolute_file(path: Path) -> Path:
    if not path.is_absolute():
        raise ValueError(f"{path} is relative; give the absolute path")
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a regular file")
    return path


def _address(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address to listen on") from None


def _hostname(host: str) -> str:
    if not host or len(host) > 253 or any(c.isspace() or c in "/@:" for c in host):
        raise ValueError(f"{host!r} is not a host name or address")
    return host


def _identifier(name: str) -> str:
    if not _ROLE.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain identifier (lowercase, digits, _)")
    return name


def _origin(origin: str) -> str:
    origin = origin.lower()
    if origin != "*" and not _ORIGIN.fullmatch(origin):
        raise ValueError(
            f"{origin!r} is not an origin: write scheme://host[:port], "
            "with no path and no trailing slash"
        )
    return origin


def _rate(text: str) -> str:
    try:
        limits.parse_many(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a rate: write it like 60/minute") from None
    return text


def _jwks_url(url: str) -> str:
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ValueError("the URL holds spaces or control characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        raise ValueError(f"{url!r} is not a URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the URL holds a password.
        raise ValueError("the URL holds credentials; a JWKS is public, remove them")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError(
            f"{url!r} is plain http; use https:// (http is allowed only for "
            "127.0.0.1, ::1 and localhost)"
        )
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{url!r} is not an https:// URL with a host")
    if parts.fragment:
        raise ValueError(f"{url!r} has a #fragment; remove it")
    return url


def _storage_uri(uri: str) -> str:
    scheme = uri.partition("://")[0]
    if scheme not in _STORAGE_SCHEMES:
        raise ValueError(
            f"{uri!r} is not a supported store: use memory:// or redis://host:port"
        )
    return uri


FilePath = Annotated[Path, AfterValidator(_absolute_file)]
RoleName = Annotated[str, AfterValidator(check_role_name)]
Identifier = Annotated[str, AfterValidator(_identifier)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DatabaseConfig(_Section):
    """How the gateway reaches PostgreSQL; ``user`` is the authenticator role."""

    host: Annotated[str, AfterValidator(_hostname)]
    port: Port = 5432
    dbname: Identifier
    user: RoleName
    password_file: FilePath
    sslmode: Literal["verify-full"] = "verify-full"
    sslrootcert: FilePath
    pool_min_size: Annotated[int, Field(ge=0, le=100)] = 1
    pool_max_size: Annotated[int, Field(ge=1, le=100)] = 10
    connect_timeout: Annotated[int, Field(ge=1, le=60)] = 5
    _password: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _read_password(self) -> Self:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size is larger than pool_max_size")
        secret = _secret(self.password_file, "password_file")
        if not secret:
            raise ValueError(f"password_file: {self.password_file} is empty")
        self._password = secret.decode()
        return self

    @property
    def password(self) -> str:
        return self._password


class ApiConfig(_Section):
    db_schema: Identifier = Field(alias="schema")
    anonymous_role: RoleName | None = None
    allowed_roles: tuple[RoleName, ...] = ()
    max_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    max_body_bytes: Annotated[int, Field(ge=1, le=64 * 2**20)] = 2**20
    statement_timeout_ms: Annotated[int, Field(ge=1, le=3_600_000)] = 10_000

    @model_validator(mode="after")
    def _schema_is_not_a_system_one(self) -> Self:
        if self.db_schema.startswith("pg_") or self.db_schema == "information_schema":
            raise ValueError(f"schema {self.db_schema!r} is a system schema")
        return self


class JwtConfig(_Section):
    """Token verification; exactly one of the four key sources is given.

    ``jwks_url`` is only checked for shape here; the authenticator fetches it.
    """

    role_claim: str = ".role"
    secret_file: FilePath | None = None
    public_key_file: FilePath | None = None
    jwks_file: FilePath | None = None
    jwks_url: Annotated[str, AfterValidator(_jwks_url)] | None = None
    jwks_ca_file: FilePath | None = None
    jwks_refresh_seconds: Annotated[int, Field(ge=60, le=86_400)] = 300
    audience: str | None = None
    issuer: str | None = None
    require_exp: bool = True
    leeway: Annotated[int, Field(ge=0, le=300)] = 30
    max_token_bytes: Annotated[int, Field(ge=256, le=64 * 1024)] = 8 * 1024
    cache_size: Annotated[int, Field(ge=0, le=1_000_000)] = 4096
    _secret: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _check_keys(self) -> Self:
        parse_claim_path(self.role_claim)
        sources = {
            "secret_file": self.secret_file,
            "public_key_file": self.public_key_file,
            "jwks_file": self.jwks_file,
            "jwks_url": self.jwks_url,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of secret_file (HS256), public_key_file (PEM), "
                "jwks_file or jwks_url"
                + (f"; remove all but one of {', '.join(given)}" if given else "")
            )
        self._check_jwks_url_options()
        if self.secret_file is not None:
            secret = _secret(self.secret_file, "secret_file")
            if len(secret) < MIN_HS256_SECRET:
                raise ValueError(
                    f"secret_file holds {len(secret)} bytes; HS256 needs at least "
                    f"{MIN_HS256_SECRET}: generate one with `openssl rand -hex 32`"
                )
            self._secret = secret
        return self

    def _check_jwks_url_options(self) -> None:
        if self.jwks_url is None:
            stray = sorted(
                {"jwks_ca_file", "jwks_refresh_seconds"} & self.model_fields_set
            )
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} only applies to jwks_url; set jwks_url "
                    "or remove it"
                )
        elif (
            self.jwks_ca_file is not None and urlsplit(self.jwks_url).scheme != "https"
        ):
            raise ValueError("jwks_ca_file needs an https:// jwks_url")

    @property
    def secret(self) -> bytes:
        return self._secret

    @property
    def claim_path(self) -> tuple[str, ...]:
        return parse_claim_path(self.role_claim)


class ApiKeyConfig(_Section):
    """One application's key, stored as the SHA-256 of the key, in hex."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
    role: RoleName


class CorsConfig(_Section):
    allowed_origins: tuple[Annotated[str, AfterValidator(_origin)], ...] = ()
    allow_credentials: bool = False
    allowed_methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PATCH", "DELETE")
    allowed_headers: tuple[str, ...] = (
        "accept",
        "accept-profile",
        "apikey",
        "authorization",
        "content-profile",
        "content-type",
        "prefer",
        "range",
        "x-api-key",
    )
    max_age: Annotated[int, Field(ge=0, le=86_400)] = 600

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Self:
        if "*" in self.allowed_origins and (
            self.allow_credentials or len(self.allowed_origins) > 1
        ):
            raise ValueError(
                'allowed_origins "*" must stand alone and cannot be combined with '
                "allow_credentials; list the exact origins instead"
            )
        return self


class LimitsConfig(_Section):
    per_subject: Annotated[str, AfterValidator(_rate)] = "60/minute"
    per_address: Annotated[str, AfterValidator(_rate)] = "120/minute"
    storage_uri: Annotated[str, AfterValidator(_storage_uri)] = "memory://"
    on_storage_error: Literal["deny", "allow"] = "deny"


class ServerConfig(_Section):
    listen_host: Annotated[str, AfterValidator(_address)] = "127.0.0.1"
    listen_port: Port = 3000
    tls_cert_file: FilePath | None = None
    tls_key_file: FilePath | None = None
    metrics_host: Annotated[str, AfterValidator(_address)] = "127.0.0.1"
    metrics_port: Port = 9090
    # A request must arrive whole within request_timeout_seconds of its first
    # byte; a connection may stay silent for idle_timeout_seconds.
    request_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    idle_timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 5
    max_connections: Annotated[int, Field(ge=1, le=100_000)] = 1000
    # Processes serving the API; each has its own pool of pool_max_size.
    workers: Annotated[int, Field(ge=1, le=64)] = 1

    @model_validator(mode="after")
    def _check_listeners(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        if self.tls_key_file is not None:
            _secret(self.tls_key_file, "tls_key_file")
        elif not ipaddress.ip_address(self.listen_host).is_loopback:
            raise ValueError(
                f"plain HTTP on {self.listen_host}: set tls_cert_file and "
                "tls_key_file, or listen on a loopback address"
            )
        if ipaddress.ip_address(self.metrics_host).is_unspecified:
            raise ValueError(
                "metrics_host must be a loopback or management address, not "
                "every interface"
            )
        if (self.metrics_host, self.metrics_port) == (
            self.listen_host,
            self.listen_port,
        ):
            raise ValueError("metrics listener and API listener are the same")
        return self


class GatewayConfig(_Section):
    database: DatabaseConfig
    api: ApiConfig
    jwt: JwtConfig
    api_keys: tuple[ApiKeyConfig, ...] = ()
    cors: CorsConfig = CorsConfig()
    limits: LimitsConfig = LimitsConfig()
    server: ServerConfig = ServerConfig()

    @model_validator(mode="after")
    def _check_roles(self) -> Self:
        names = [key.name for key in self.api_keys]
        hashes = [key.sha256.lower() for key in self.api_keys]
        if len(set(names)) != len(names) or len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: each name and each sha256 must be unique")
        allowed = set(self.api.allowed_roles)
        if allowed:
            used = {key.role for key in self.api_keys}
            if self.api.anonymous_role is not None:
                used.add(self.api.anonymous_role)
            if missing := sorted(used - allowed):
                raise ValueError(
                    f"roles {', '.join(missing)} are used but not in "
                    "api.allowed_roles; add them there"
                )
        return self


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling and section"
        elif item["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{where}: {message}")
    return problems


def load_config(path: Path) -> GatewayConfig:
    """Read, validate and return the configuration in ``path``."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return config_from_mapping(data)


def config_from_mapping(data: dict[str, object]) -> GatewayConfig:
    """Validate an already parsed configuration (used by tests and tools)."""
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
