"""The socket group: does it exist, and is the server's OS user in it?

pyinfra's ``Users`` fact answers that with a loop over every account on the
host, several processes per account. :func:`membership_command` asks
``getent`` about the one group and ``id`` about the one user;
:func:`parse_membership` reads the answer.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GroupMembership", "membership_command", "parse_membership"]

_GROUP = "group:"
_EXISTS = "group-exists"
_MEMBER_OF = "member-of:"


@dataclass(frozen=True)
class GroupMembership:
    """Whether the group exists and whether the user belongs to it (primary
    or supplementary). A user that does not exist belongs to nothing."""

    exists: bool
    member: bool


def membership_command(user: str, group: str) -> str:
    """Shell printing what :func:`parse_membership` reads for ``user`` and
    ``group``; it never fails on a missing user or group."""
    quoted = shlex.quote(group)
    return (
        f"echo {_GROUP} {quoted}; "
        f"if getent group {quoted} >/dev/null; then echo {_EXISTS}; fi; "
        f'echo "{_MEMBER_OF} $(id -nG {shlex.quote(user)} 2>/dev/null)"'
    )


def parse_membership(lines: Iterable[str]) -> GroupMembership:
    """The output of :func:`membership_command` as a :class:`GroupMembership`."""
    group, exists, groups = None, False, []
    for line in lines:
        text = line.strip()
        if text.startswith(_GROUP):
            group = text[len(_GROUP) :].strip()
        elif text == _EXISTS:
            exists = True
        elif text.startswith(_MEMBER_OF):
            groups = text[len(_MEMBER_OF) :].split()
    if group is None:
        raise ValueError("the membership output does not name the group")
    return GroupMembership(exists, group in groups)
