"""What an inventory says about a directory (OpenLDAP's slapd) and its clients.

Keys start with ``ldap_``; an unknown ``ldap_`` key is an error, as for
``postgres_`` keys. A directory host reads every key of :class:`LdapServerSpec`;
a PostgreSQL host with ``ldap`` rules reads only ``ldap_client_ca_file``: the
CA that signed the directory's certificate, the toolkit's own CA
(``postgres_tls.ca_dir``) when it is not given.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import SpecError

__all__ = ["LdapServerSpec", "PersonSpec", "client_ca_file", "ldap_from_host_data"]

_UID = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_OU = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z0-9-]{1,63}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)*[A-Za-z0-9-]{1,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonSpec(_Strict):
    """One person in the directory; ``uid`` is also their database role name."""

    uid: str
    name: str
    password: str | None = None

    @field_validator("uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        if not _UID.match(value):
            raise ValueError(
                f"{value!r} is not a plain login name; use lower-case letters, digits "
                "and _, starting with a letter (it is also the database role name)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or any(ord(c) < 32 for c in value) or len(value) > 200:
            raise ValueError(
                f"{value!r} is not a person's name; write one line of 1 to 200 "
                "characters, such as Ada Lovelace"
            )
        return value


class LdapServerSpec(_Strict):
    """A directory host: its domain, people, listen address and certificate."""

    host: str
    domain: str
    organization: str = "pgfortress"
    people_ou: str = "people"
    people: list[PersonSpec] = Field(default_factory=list)
    listen: str
    ca_dir: Path
    dns_names: list[str] = Field(default_factory=list)
    client_ca_file: Path | None = None
    secrets_dir: Path

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _DOMAIN.match(value):
            raise ValueError(
                f"{value!r} is not a DNS domain; write lower-case labels with dots, "
                "such as example.net (the directory's base is dc=example,dc=net)"
            )
        return value

    @field_validator("people_ou")
    @classmethod
    def _ou(cls, value: str) -> str:
        if not _OU.match(value):
            raise ValueError(f"{value!r} is not a plain name such as people")
        return value

    @field_validator("people")
    @classmethod
    def _people(cls, people: list[PersonSpec]) -> list[PersonSpec]:
        seen: set[str] = set()
        for person in people:
            if person.uid in seen:
                raise ValueError(f"uid {person.uid!r} is listed twice; keep one")
            seen.add(person.uid)
        return people

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address; write one address of this host, "
                "such as 10.0.0.11"
            ) from None
        if address.is_unspecified:
            raise ValueError(f"{value!r} means every address; name one address")
        return value

    @field_validator("dns_names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _DNS_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a DNS name such as ldap1.example.net"
                )
        return names

    @property
    def base_dn(self) -> str:
        return ",".join(f"dc={label}" for label in self.domain.split("."))

    @property
    def people_dn(self) -> str:
        return f"ou={self.people_ou},{self.base_dn}"

    def person_dn(self, uid: str) -> str:
        return f"uid={uid},{self.people_dn}"


_KEYS = {f"ldap_{name}": name for name in LdapServerSpec.model_fields} | {
    "pgfortress_secrets_dir": "secrets_dir"
}
_KEYS.pop("ldap_host")
_KEYS.pop("ldap_secrets_dir")


def _unknown_key(host: str, data: Mapping[str, Any]) -> None:
    for key in data:
        if key.startswith("ldap_") and key not in _KEYS:
            close = difflib.get_close_matches(key, list(_KEYS), n=1)
            hint = (
                f"did you mean {close[0]}?" if close else "see docs/reference/ldap.md"
            )
            raise SpecError(f"host {host}: {key}: unknown key; {hint}")


def ldap_from_host_data(host: str, data: Mapping[str, Any]) -> LdapServerSpec:
    """Validate a directory host's data, or raise SpecError naming key and fix."""
    _unknown_key(host, data)
    values = {field: data[key] for key, field in _KEYS.items() if key in data}
    try:
        return LdapServerSpec(host=host, **values)
    except ValidationError as error:
        lines = []
        for item in error.errors(include_url=False, include_input=False):
            key = _key_of(item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "is required; see docs/reference/ldap.md"
            lines.append(f"host {host}: {key}: {message}")
        raise SpecError("\n".join(lines)) from None


def _key_of(loc: tuple[int | str, ...]) -> str:
    fields = {field: key for key, field in _KEYS.items()}
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = fields.get(part, part)
        else:
            text += f".{part}"
    return text


def client_ca_file(host: str, data: Mapping[str, Any]) -> Path | None:
    """The ``ldap_client_ca_file`` of a directory client, checked; None if unset."""
    _unknown_key(host, data)
    value = data.get("ldap_client_ca_file")
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute() or not path.is_file():
        raise SpecError(
            f"host {host}: ldap_client_ca_file: {value!r} is not a file; give the "
            "absolute path of the PEM certificate of the CA that signed the "
            "directory's certificate, or remove the key to use postgres_tls.ca_dir"
        )
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes():
        raise SpecError(
            f"host {host}: ldap_client_ca_file: {path} holds no PEM certificate"
        )
    return path
