"""Render pg_hba.conf from the declarative policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..spec.hba import HbaRule
from ._templates import render

__all__ = ["HbaLine", "hba_lines", "render_hba"]


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
                options=" ".join(f"{k}={v}" for k, v in sorted(rule.options.items())),
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
