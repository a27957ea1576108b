"""The declarative client-authentication policy: one model per pg_hba rule.

A rule names who may connect (databases, database roles), from where (a
network, or the local socket) and how they prove it (the method). Validation
refuses anything that would let a client in without a secret over the
network: ``trust``, ``password`` and ``md5`` over TCP, and accepting rules that
do not require TLS. ``ldap`` (people's directory passwords) is accepted on
``hostssl`` rules only, with TLS to the directory (:mod:`.hba_ldap`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .hba_ldap import ldap_options_problem, option_value_problem
from .networks import parse_network

__all__ = ["HBA_KEYWORDS", "NAME_PATTERN", "HbaRule"]

# Database and role names in pg_hba.conf are matched literally; restricting
# them to plain identifiers means the file never needs quoting.
NAME_PATTERN = re.compile(r"^\+?[A-Za-z_][A-Za-z0-9_$.-]{0,62}$")
HBA_KEYWORDS = frozenset({"all", "sameuser", "samerole", "samegroup", "replication"})

TCP_METHODS = frozenset({"scram-sha-256", "cert", "ldap", "reject"})
LOCAL_METHODS = frozenset({"peer", "scram-sha-256", "reject"})
KNOWN_METHODS = frozenset(
    {"trust", "reject", "scram-sha-256", "md5", "password", "peer", "ident", "cert"}
    | {"gss", "sspi", "pam", "ldap", "radius", "bsd"}
)
# Options accepted per method; PostgreSQL 14 dropped clientcert=1/0.
METHOD_OPTIONS: dict[str, dict[str, frozenset[str]]] = {
    "scram-sha-256": {"clientcert": frozenset({"verify-ca", "verify-full"})},
    "cert": {"clientcert": frozenset({"verify-full"}), "map": frozenset()},
    "peer": {"map": frozenset()},
    "reject": {},
}


def _as_list(value: object) -> object:
    """Let a single name be written without list brackets."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    return value


NameList = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]


def _check_names(names: list[str], field: str) -> list[str]:
    for name in names:
        if name in HBA_KEYWORDS:
            continue
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"{field}: {name!r} is not a plain name; use letters, digits and "
                "_ $ . - (a leading + means members of a group role), or one of "
                + ", ".join(sorted(HBA_KEYWORDS))
            )
    return names


class HbaRule(BaseModel):
    """One line of pg_hba.conf, in the order written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["local", "hostssl", "host", "hostnossl"] = "hostssl"
    databases: NameList
    users: NameList
    address: str | None = None
    method: str = "scram-sha-256"
    options: dict[str, str] = Field(default_factory=dict)
    comment: str | None = None
    acknowledge: list[Literal["wide-network", "all-all"]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> HbaRule:
        _check_names(self.databases, "databases")
        _check_names(self.users, "users")
        self._check_address()
        self._check_method()
        self._check_options()
        if self.comment is not None and any(ord(c) < 32 for c in self.comment):
            raise ValueError(
                "comment: must be a single line without control characters"
            )
        return self

    def _check_address(self) -> None:
        if self.type == "local":
            if self.address is not None:
                raise ValueError(
                    "address: a local (unix socket) rule takes no address; remove "
                    "it or change type to hostssl"
                )
            return
        if self.address is None:
            raise ValueError(
                f"address: a {self.type} rule needs a network such as 10.0.0.0/24"
            )
        parse_network(self.address, "address")

    def _check_method(self) -> None:
        method = self.method
        if method not in KNOWN_METHODS:
            raise ValueError(
                f"method: {method!r} is not a PostgreSQL authentication method; use "
                "scram-sha-256, cert or reject over TCP, peer on the local socket"
            )
        if method == "ldap" and self.type != "hostssl":
            raise ValueError(
                f"type: an ldap rule on {self.type!r} would let the person's password "
                "reach the server without TLS; ldap is accepted on hostssl rules only"
            )
        if self.type == "local":
            if method not in LOCAL_METHODS:
                raise ValueError(
                    f"method: {method!r} is not allowed on the local socket; use "
                    "peer, scram-sha-256 or reject"
                )
            return
        if method not in TCP_METHODS:
            why = {
                "trust": "lets anyone in without any password",
                "password": "sends the password itself to the server",
                "md5": "relies on md5 hashes, which SCRAM replaced",
            }.get(method, "is not allowed over TCP by pgfortress")
            raise ValueError(
                f"method: {method!r} over TCP {why}; use scram-sha-256, cert or ldap"
            )
        if method != "reject" and self.type != "hostssl":
            raise ValueError(
                f"type: {self.type!r} accepts connections without TLS; use hostssl "
                "for every rule that lets clients in (host is allowed with reject)"
            )

    def _check_options(self) -> None:
        if self.method == "ldap":
            problem = ldap_options_problem(self.options)
            if problem is not None:
                raise ValueError(problem)
            return
        allowed = METHOD_OPTIONS.get(self.method, {})
        for name, value in self.options.items():
            if name not in allowed:
                hint = ", ".join(sorted(allowed)) or "none"
                raise ValueError(
                    f"options: {name!r} is not an option of method {self.method!r} "
                    f"(accepted: {hint})"
                )
            values = allowed[name]
            problem = option_value_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
            if values and value not in values:
                raise ValueError(
                    f"options: {name}={value!r} is not accepted; use "
                    + " or ".join(f"{name}={v}" for v in sorted(values))
                )

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
        return None if self.address is None else parse_network(self.address, "address")
