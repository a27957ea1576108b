"""A control group of its own for each host's systemd-nspawn.

With ``--keep-unit`` and no systemd on the machine, systemd-nspawn splits the
cgroup it was started in into ``payload`` and ``supervisor``. Two hosts started
from the same cgroup would then share one ``payload`` tree, and each
container's systemd would manage (and on shutdown kill) the other's services.
Starting every systemd-nspawn inside ``pgfortress-lab/<machine>`` keeps the
containers apart.
"""

from __future__ import annotations

import os
from pathlib import Path

from pgfortress._logging import logger

__all__ = ["enter_argv", "machine_cgroups", "remove_cgroups"]

_PARENT = "pgfortress-lab"

# Moves the shell into each cgroup given, then becomes the real command, so the
# recorded pid is the command's own and nothing runs outside the cgroup.
_ENTER = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do '
    'echo $$ > "$1/cgroup.procs" || exit 125; shift; n=$((n - 1)); done; '
    'exec "$@"'
)


def _hierarchies() -> list[tuple[Path, str]]:
    """(mount point, our path in it) of the cgroup2 and name=systemd trees."""
    ours: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        ours[controllers] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        fstype, options = fields[separator + 1], fields[separator + 3]
        point = Path(fields[4])
        if fstype == "cgroup2" and "" in ours:
            found.append((point, ours[""]))
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            found.append((point, ours.get("name=systemd", "/")))
    return found


def machine_cgroups(machine: str) -> list[Path]:
    """The cgroup directories one host's systemd-nspawn is started in."""
    return [
        point / path.lstrip("/") / _PARENT / machine for point, path in _hierarchies()
    ]


def enter_argv(cgroups: list[Path], argv: list[str]) -> list[str]:
    """``argv`` wrapped so that it runs inside ``cgroups`` (created here)."""
    for group in cgroups:
        group.mkdir(parents=True, exist_ok=True)
    paths = [str(group) for group in cgroups]
    return ["sh", "-c", _ENTER, "sh", str(len(paths)), *paths, *argv]


def remove_cgroups(cgroups: list[Path]) -> list[Path]:
    """Remove the (empty) cgroup trees; those still holding processes remain.

    The shared ``pgfortress-lab`` parent stays: another lab may be creating a
    child in it at the same moment.
    """
    left = []
    for group in cgroups:
        if not group.is_dir():
            continue
        for directory, _, _ in os.walk(group, topdown=False):
            try:
                Path(directory).rmdir()
            except OSError as error:
                logger.debug("cgroup %s not removed: %s", directory, error)
        if group.exists():
            left.append(group)
    return left
