"""A directory's owner and mode, read with the host's other state.

pyinfra's ``files.directory`` reads the directory again when it runs, one
round trip per host even when nothing changes. The roles read it while
pyinfra prepares instead (:func:`directory_state_command`, in one round trip
with the other reads), and :func:`directory_changes` says what to run.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DirectoryState",
    "directory_changes",
    "directory_state_command",
    "parse_directory_state",
]

Kind = Literal["directory", "absent", "other"]


@dataclass(frozen=True)
class DirectoryState:
    """What is at a path: a directory (with owner and mode), nothing, or
    something else."""

    kind: Kind
    user: str = ""
    group: str = ""
    mode: str = ""


def directory_state_command(path: str) -> str:
    """Shell printing what :func:`parse_directory_state` reads, for ``path``."""
    quoted = shlex.quote(path)
    return (
        f"if [ -d {quoted} ] && [ ! -L {quoted} ]; then "
        f"stat -c 'directory %U %G %a' {quoted}; "
        f"elif [ -e {quoted} ] || [ -L {quoted} ]; then echo other; "
        "else echo absent; fi"
    )


def parse_directory_state(lines: Sequence[str]) -> DirectoryState:
    """The output of :func:`directory_state_command` as a :class:`DirectoryState`."""
    words = " ".join(lines).split()
    if words[:1] == ["directory"] and len(words) == 4:
        return DirectoryState("directory", words[1], words[2], words[3])
    if words in (["absent"], ["other"]):
        return DirectoryState(words[0])  # type: ignore[arg-type]
    raise ValueError(f"unexpected directory state: {' '.join(words)!r}")


def directory_changes(
    path: str, state: DirectoryState, user: str, group: str, mode: str
) -> list[str]:
    """The commands that make ``path`` a directory owned by ``user:group``
    with ``mode``; none when it is one already. A path that holds something
    else (a file, a link) is refused: it is left for a person to look at."""
    if state.kind == "other":
        raise ValueError(f"{path} exists and is not a directory: move it away")
    if (
        state.kind == "directory"
        and (state.user, state.group) == (user, group)
        and int(state.mode, 8) == int(mode, 8)
    ):
        return []
    owner = shlex.quote(f"{user}:{group}")
    quoted = shlex.quote(path)
    if state.kind == "absent":
        return [f"mkdir -p {quoted} && chown {owner} {quoted} && chmod {mode} {quoted}"]
    return [f"chown {owner} {quoted} && chmod {mode} {quoted}"]
