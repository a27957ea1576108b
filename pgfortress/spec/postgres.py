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
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..errors import SpecError
from ._setting_units import unit_problem
from ._setting_versions import version_problem
from .hba import NAME_PATTERN, HbaRule
from .hba_policy import (
    Shadow,
    admin_rule_problem,
    rule_text,
    shadowed_rules,
    unneeded_acknowledgements,
)

__all__ = [
    "LoggingSpec",
    "PostgresHostSpec",
    "ProbeRoleSpec",
    "SocketSpec",
    "TlsSpec",
    "check_settings_for",
    "from_host_data",
]

SUPPORTED_MAJORS = range(13, 19)
SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]{0,62}$")
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
GROUP_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# Settings pgfortress renders itself, and what to do instead of setting them.
MANAGED_SETTINGS = {
    "listen_addresses": "set it through postgres_listen",
    "port": "set it through postgres_port",
    "unix_socket_directories": "set it through postgres_socket.directory",
    "unix_socket_group": "set it through postgres_socket.group",
    "unix_socket_permissions": "set it through postgres_socket.mode",
    "password_encryption": "remove it: pgfortress always uses scram-sha-256",
    "log_connections": "set it through postgres_logging.connections",
    "log_disconnections": "set it through postgres_logging.disconnections",
    "log_line_prefix": "set it through postgres_logging.line_prefix",
    "log_statement": "set it through postgres_logging.statement",
}
# Settings that would move or bypass files pgfortress owns.
OWNED_FILES = frozenset(
    {"config_file", "data_directory", "hba_file", "ident_file", "external_pid_file"}
    | {"include", "include_dir", "include_if_exists"}
)


def _managed(name: str) -> str | None:
    """Why ``name`` may not appear in postgres_settings, or None if it may."""
    if name in MANAGED_SETTINGS:
        return MANAGED_SETTINGS[name]
    if name.startswith("ssl"):
        return "TLS is managed as a whole; use postgres_tls (min_protocol, files)"
    if name in OWNED_FILES:
        return "pgfortress owns PostgreSQL's configuration files; remove it"
    return None


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
    version: int | None = None
    listen: list[str] = Field(min_length=1)
    port: int = Field(default=5432, ge=1024, le=65535)
    socket: SocketSpec = Field(default_factory=SocketSpec)
    tls: TlsSpec
    hba: list[HbaRule] = Field(default_factory=list)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    probe_role: ProbeRoleSpec | None = None
    database_roles: Path | None = None
    secrets_dir: Path | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: int | None) -> int | None:
        if value is not None and value not in SUPPORTED_MAJORS:
            raise ValueError(
                f"{value} is not a PostgreSQL major version pgfortress supports; "
                f"write {SUPPORTED_MAJORS[0]} to {SUPPORTED_MAJORS[-1]}, or remove "
                "the key to use the host's cluster or its Debian release's version"
            )
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, entries: list[str]) -> list[str]:
        if "*" in entries and len(entries) > 1:
            raise ValueError(
                "'*' already means every address; list it alone or name the "
                "interfaces/addresses instead"
            )
        for entry in entries:
            if entry in {"0.0.0.0", "::"}:  # noqa: S104 - refused, not bound
                raise ValueError(
                    f"{entry!r} means every address; write ['*'] to listen on all "
                    "of them, or better, name the interfaces"
                )
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
        cls, values: dict[str, str | int | float | bool], info: ValidationInfo
    ) -> dict[str, str | int | float | bool]:
        major = info.data.get("version")
        for name, value in values.items():
            if not SETTING_NAME.match(name):
                raise ValueError(f"{name!r} is not a PostgreSQL setting name")
            reason = _managed(name)
            if reason is not None:
                raise ValueError(f"{name!r} is managed by pgfortress; {reason}")
            if isinstance(value, str) and ("\n" in value or "\0" in value):
                raise ValueError(f"{name}: the value must be a single line")
            problem = unit_problem(name, value)
            if problem is None and major is not None:
                problem = version_problem(name, major)
            if problem is not None:
                raise ValueError(problem)
        return values

    @field_validator("hba")
    @classmethod
    def _policy(cls, rules: list[HbaRule]) -> list[HbaRule]:
        for position, rule in enumerate(rules):
            problem = admin_rule_problem(rule)
            if problem is not None:
                raise ValueError(f"rule [{position}] ({rule_text(rule)}): {problem}")
            for kind in unneeded_acknowledgements(rule):
                raise ValueError(
                    f"rule [{position}] ({rule_text(rule)}): acknowledge: {kind!r} "
                    "acknowledges a warning this rule does not raise; remove it"
                )
        for shadow in shadowed_rules(rules):
            raise ValueError(_shadow_message(rules, shadow))
        return rules

    @model_validator(mode="after")
    def _secrets(self) -> PostgresHostSpec:
        for key, value in (
            ("probe_role", self.probe_role),
            ("database_roles", self.database_roles),
        ):
            if value is not None and self.secrets_dir is None:
                raise ValueError(
                    f"{key} needs pgfortress_secrets_dir: a local directory (mode "
                    "0700) where generated passwords are kept"
                )
        return self


def check_settings_for(spec: PostgresHostSpec, major: int) -> None:
    """Refuse ``postgres_settings`` that PostgreSQL ``major`` does not have.

    For hosts whose major is known only from their facts (no
    ``postgres_version``); raises SpecError naming the host and the key.
    """
    for name in spec.settings:
        problem = version_problem(name, major)
        if problem is not None:
            raise SpecError(f"host {spec.host}: postgres_settings: {problem}")


def _shadow_message(rules: list[HbaRule], shadow: Shadow) -> str:
    earlier, later = shadow.earlier, shadow.later
    first, second = rule_text(rules[earlier]), rule_text(rules[later])
    if shadow.duplicate:
        return f"rule [{later}] ({second}) repeats rule [{earlier}]; remove one of them"
    return (
        f"rule [{later}] ({second}) can never be used: rule [{earlier}] ({first}) "
        "comes first and matches every connection it would match, and PostgreSQL "
        f"stops at the first matching rule; move rule [{later}] above rule "
        f"[{earlier}], narrow rule [{earlier}], or remove rule [{later}]"
    )


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


_FIXES = {
    "list_type": "write a list, such as ['eth0'] or [{...}]",
    "dict_type": "write a mapping of keys to values",
    "model_type": "write a mapping of keys to values",
    "int_parsing": "write a whole number",
    "bool_parsing": "write true or false",
    "string_type": "write a string in quotes",
}


def _message(item: Any) -> str:
    message = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    kind = item["type"]
    if kind == "missing":
        return "is required; see docs/reference/inventory.md"
    if kind == "extra_forbidden":
        return _unknown_key(item["loc"])
    if kind in _FIXES:
        return f"{message}; {_FIXES[kind]}"
    if kind in {"greater_than_equal", "less_than_equal", "literal_error"}:
        return f"{message}; change the value"
    return message


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """Name the keys that are allowed where an unknown one was written."""
    model: Any = PostgresHostSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next(
            c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)
        )
    allowed = sorted(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f"did you mean {close[0]}?" if close else "accepted keys:"
    return f"unknown key; {hint} ({', '.join(allowed)})"
