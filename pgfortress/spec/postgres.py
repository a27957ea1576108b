"""What an inventory says about one PostgreSQL host, checked before any host is touched.

Inventory data is flat pyinfra host data, so that group data can set the policy
while host data names the addresses. Every key this module reads starts with
``postgres_`` (plus ``pgfortress_secrets_dir``); an unknown ``postgres_`` key is
an error, because a typo there would silently leave a default in place.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import SpecError
from .hba import NAME_PATTERN, HbaRule

__all__ = [
    "LoggingSpec",
    "PostgresHostSpec",
    "ProbeRoleSpec",
    "SocketSpec",
    "TlsSpec",
    "from_host_data",
]

SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]{0,62}$")
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
GROUP_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# Settings pgfortress renders itself; each maps to the inventory key to use.
MANAGED_SETTINGS = {
    "listen_addresses": "postgres_listen",
    "port": "postgres_port",
    "unix_socket_directories": "postgres_socket.directory",
    "unix_socket_group": "postgres_socket.group",
    "unix_socket_permissions": "postgres_socket.mode",
    "password_encryption": "(always scram-sha-256)",
    "ssl": "(always on)",
    "ssl_cert_file": "postgres_tls",
    "ssl_key_file": "postgres_tls",
    "ssl_ca_file": "postgres_tls",
    "ssl_min_protocol_version": "postgres_tls.min_protocol",
    "log_connections": "postgres_logging.connections",
    "log_disconnections": "postgres_logging.disconnections",
    "log_line_prefix": "postgres_logging.line_prefix",
    "log_statement": "postgres_logging.statement",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SocketSpec(_Strict):
    """The unix socket: where it lives, which group may use it, and its mode."""

    directory: str = "/var/run/postgresql"
    group: str = "pgsocket"
    mode: Literal["0700", "0770"] = "0770"

    @field_validator("directory")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or "'" in value or "," in value:
            raise ValueError(
                f"{value!r} must be an absolute path without quotes or commas, "
                "such as /var/run/postgresql"
            )
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not GROUP_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid Unix group name; use lower-case letters, "
                "digits, _ and -, such as pgsocket"
            )
        return value


class TlsSpec(_Strict):
    """Where the server certificate comes from.

    Either the toolkit's own CA (``ca_dir``, created with ``pgfortress ca init``)
    issues a certificate per host, or the operator supplies ``cert_file`` and
    ``key_file`` (plus the ``ca_dir`` whose ``ca.crt`` clients should trust).
    """

    ca_dir: Path
    cert_store: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    min_protocol: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    dns_names: list[str] = Field(default_factory=list)

    @field_validator("dns_names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        pattern = re.compile(
            r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}$"
        )
        for name in names:
            if not pattern.match(name):
                raise ValueError(f"{name!r} is not a DNS name such as db1.example.net")
        return names

    @model_validator(mode="after")
    def _pair(self) -> TlsSpec:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "cert_file and key_file go together: give both to use your own "
                "certificate, or neither to have the CA in ca_dir issue one"
            )
        return self

    @property
    def issued_dir(self) -> Path:
        return self.cert_store or self.ca_dir / "issued"


class LoggingSpec(_Strict):
    """Connection and statement logging; defaults suit an audited server."""

    connections: bool = True
    disconnections: bool = True
    statement: Literal["none", "ddl", "mod", "all"] = "ddl"
    line_prefix: str = "%m [%p] user=%u db=%d client=%r app=%a "

    @field_validator("line_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        missing = [code for code in ("%m", "%p", "%u", "%d") if code not in value]
        if "%r" not in value and "%h" not in value:
            missing.append("%r")
        if missing:
            raise ValueError(
                f"{value!r} lacks {', '.join(missing)}; an audit log line needs the "
                "time (%m), pid (%p), user (%u), database (%d) and client (%r)"
            )
        if "\n" in value:
            raise ValueError("must be a single line")
        return value


class ProbeRoleSpec(_Strict):
    """A LOGIN database role with no privileges, used to prove clients get in."""

    name: str = "pgfortress_probe"
    password: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value) or value.startswith("+"):
            raise ValueError(f"{value!r} is not a plain database role name")
        return value


class PostgresHostSpec(_Strict):
    """Everything pgfortress needs to harden PostgreSQL on one host."""

    host: str
    version: int | None = Field(default=None, ge=13, le=18)
    listen: list[str] = Field(min_length=1)
    port: int = Field(default=5432, ge=1024, le=65535)
    socket: SocketSpec = Field(default_factory=SocketSpec)
    tls: TlsSpec
    hba: list[HbaRule] = Field(default_factory=list)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    probe_role: ProbeRoleSpec | None = None
    secrets_dir: Path | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, entries: list[str]) -> list[str]:
        if "*" in entries and len(entries) > 1:
            raise ValueError(
                "'*' already means every address; list it alone or name the "
                "interfaces/addresses instead"
            )
        for entry in entries:
            if entry == "*" or _is_address(entry):
                continue
            if not INTERFACE_NAME.match(entry):
                raise ValueError(
                    f"{entry!r} is neither an IP address nor an interface name; "
                    "write an address of this host (10.0.0.5) or an interface (eth0)"
                )
        return entries

    @field_validator("settings")
    @classmethod
    def _settings(
        cls, values: dict[str, str | int | float | bool]
    ) -> dict[str, str | int | float | bool]:
        for name, value in values.items():
            if not SETTING_NAME.match(name):
                raise ValueError(f"{name!r} is not a PostgreSQL setting name")
            if name in MANAGED_SETTINGS:
                raise ValueError(
                    f"{name!r} is managed by pgfortress; set it through "
                    f"{MANAGED_SETTINGS[name]}"
                )
            if isinstance(value, str) and ("\n" in value or "\0" in value):
                raise ValueError(f"{name}: the value must be a single line")
        return values

    @model_validator(mode="after")
    def _secrets(self) -> PostgresHostSpec:
        if self.probe_role is not None and self.secrets_dir is None:
            raise ValueError(
                "probe_role needs pgfortress_secrets_dir: a local directory (mode "
                "0700) where the probe role's password is kept"
            )
        return self


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_KEYS = {f"postgres_{name}": name for name in PostgresHostSpec.model_fields} | {
    "pgfortress_secrets_dir": "secrets_dir"
}
_KEYS.pop("postgres_host")
_FIELDS = {field: key for key, field in _KEYS.items()}


def from_host_data(host: str, data: Mapping[str, Any]) -> PostgresHostSpec:
    """Validate one host's inventory data, or raise SpecError saying what to fix."""
    unknown = [k for k in data if k.startswith("postgres_") and k not in _KEYS]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(_KEYS), n=1)
        hint = (
            f"did you mean {close[0]}?" if close else "see docs/reference/inventory.md"
        )
        raise SpecError(f"host {host}: {key}: unknown key; {hint}")
    values = {field: data[key] for key, field in _KEYS.items() if key in data}
    try:
        return PostgresHostSpec(host=host, **values)
    except ValidationError as error:
        raise SpecError(_describe(host, error)) from None


def _describe(host: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        lines.append(f"host {host}: {_location(item['loc'])}: {_message(item)}")
    return "\n".join(lines)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = _FIELDS.get(part, part)
        else:
            text += f".{part}"
    return text or "(data)"


def _message(item: Any) -> str:
    message = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if item["type"] == "missing":
        return "is required; see docs/reference/inventory.md"
    return message
