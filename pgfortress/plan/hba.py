"""Render pg_hba.conf from the declarative policy."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..spec.hba import HbaRule
from ._templates import render

__all__ = [
    "HbaLine",
    "first_match",
    "hba_lines",
    "lockout_problem",
    "option_text",
    "render_hba",
    "uses_ldap",
]

# The databases the deploy itself opens as the administrator over the socket.
DEPLOY_DATABASES = ("postgres", "template1")
# Option values made only of these characters need no quotes in pg_hba.conf.
_BARE_VALUE = re.compile(r"^[A-Za-z0-9_.:@/-]+$")


@dataclass(frozen=True)
class HbaLine:
    """One rendered line, columns already joined with commas where needed."""

    type: str
    database: str
    user: str
    address: str
    method: str
    options: str = ""
    comment: str = ""


def hba_lines(rules: Sequence[HbaRule], admin_user: str = "postgres") -> list[HbaLine]:
    """The complete rule list: admin peer first, the policy, then reject the rest.

    The administrator is refused over TCP before any policy rule is tried, so
    no rule naming ``all`` users can let the superuser in from the network.
    """
    lines = [
        HbaLine("local", "all", admin_user, "", "peer", comment="administration"),
        HbaLine(
            "host",
            "all",
            admin_user,
            "0.0.0.0/0",
            "reject",
            comment="the superuser never logs in over the network",
        ),
        HbaLine("host", "all", admin_user, "::/0", "reject"),
    ]
    for rule in rules:
        lines.append(
            HbaLine(
                type=rule.type,
                database=",".join(rule.databases),
                user=",".join(rule.users),
                address=str(rule.network or ""),
                method=rule.method,
                options=option_text(rule.options),
                comment=rule.comment or "",
            )
        )
    lines += [
        HbaLine("local", "all", "all", "", "reject", comment="refuse the rest"),
        HbaLine("host", "all", "all", "0.0.0.0/0", "reject"),
        HbaLine("host", "all", "all", "::/0", "reject"),
        HbaLine("host", "replication", "all", "0.0.0.0/0", "reject"),
        HbaLine("host", "replication", "all", "::/0", "reject"),
    ]
    return lines


def option_text(options: Mapping[str, str]) -> str:
    """The options column: ``name=value`` pairs, values quoted where needed.

    A value with a comma, a space or ``=`` (an LDAP DN fragment) is written in
    double quotes, or PostgreSQL would split it. The spec has already refused
    values with double quotes or control characters, which no quoting carries.
    """
    pairs = []
    for name, value in sorted(options.items()):
        if '"' in value or any(ord(char) < 32 for char in value):
            raise ValueError(f"options: {name}: value cannot be written to pg_hba.conf")
        text = value if _BARE_VALUE.match(value) else f'"{value}"'
        pairs.append(f"{name}={text}")
    return " ".join(pairs)


def uses_ldap(rules: Sequence[HbaRule]) -> bool:
    """Whether any rule sends people's passwords on to a directory."""
    return any(rule.method == "ldap" for rule in rules)


def render_hba(rules: Sequence[HbaRule], admin_user: str = "postgres") -> str:
    """The text of pg_hba.conf, aligned in columns for people who read it."""
    lines = hba_lines(rules, admin_user)
    widths = [
        max(len(getattr(line, field)) for line in lines)
        for field in ("type", "database", "user", "address")
    ]
    rows = []
    for line in lines:
        columns = [line.type, line.database, line.user, line.address]
        cells = [
            value.ljust(width) for value, width in zip(columns, widths, strict=True)
        ]
        text = "  ".join([*cells, line.method, line.options]).rstrip()
        rows.append((f"# {line.comment}" if line.comment else None, text))
    return render("postgresql/pg_hba.conf.j2", rows=rows)


def _line_may_match(
    line: HbaLine, database: str, user: str, address: str | None
) -> bool:
    """Whether ``line`` may match; group and same* keywords count as a match."""
    if (line.type == "local") != (address is None):
        return False
    if address is not None:
        network = ipaddress.ip_network(line.address)
        if ipaddress.ip_address(address) not in network:
            return False
    databases = line.database.split(",")
    users = line.user.split(",")
    database_ok = database in databases or bool(
        {"all", "sameuser", "samerole", "samegroup"} & set(databases)
    )
    user_ok = user in users or "all" in users or any(u[0] == "+" for u in users)
    return database_ok and user_ok


def first_match(
    lines: Sequence[HbaLine], database: str, user: str, address: str | None = None
) -> int | None:
    """The index of the first line that may decide a connection (socket if no address).

    Lines that might match (a ``+group`` or ``samerole`` entry) count as
    matching, so a safe answer here is safe on the server too.
    """
    for index, line in enumerate(lines):
        if _line_may_match(line, database, user, address):
            return index
    return None


def lockout_problem(
    lines: Sequence[HbaLine], admin_user: str = "postgres"
) -> str | None:
    """Why these pg_hba lines could lock the deploy out, or None if they cannot.

    The deploy connects only as ``admin_user`` over the unix socket (to check,
    verify and apply database roles); the first line that may decide such a
    connection must be the administrator's ``peer`` line. :func:`hba_lines`
    always puts it first, so this holds for every policy; the check guards
    against a future change to that order.
    """
    for database in (*DEPLOY_DATABASES, "any_application_database"):
        index = first_match(lines, database, admin_user)
        if index is None:
            where = "no line of pg_hba.conf"
        elif (lines[index].method, lines[index].user) == ("peer", admin_user):
            continue
        else:
            where = f"line {index + 1} of the rules"
        return (
            f"{admin_user} over the socket to {database} is decided by {where}, "
            f"not by local all {admin_user} peer: the deploy would lock itself out"
        )
    return None
