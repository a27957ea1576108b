"""Lab and host names, and the kernel object names derived from them.

Every object the lab creates on the machine carries a name derived here, so a
lab's leftovers can be found from its state alone. Interface names are limited
by the kernel to 15 characters, which is why they use the numeric slot rather
than the lab name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pgfortress.errors import LabError

__all__ = [
    "DEFAULT_HOSTS",
    "MAX_HOSTS",
    "bridge_name",
    "check_host_names",
    "check_lab_name",
    "groups_of",
    "machine_name",
    "netns_name",
    "veth_name",
]

DEFAULT_HOSTS = ("db1", "gw1", "client1")

# Two cores boot about four hosts comfortably. The ceiling is there for
# bench/many_hosts.py, which can boot 20 database hosts that are idle between
# its deploys; addresses run from .10 to .29 of the lab's /24. Each host holds
# about 7 of root's inotify instances (systemd, logind, getty), and Linux
# allows 128 by default (fs.inotify.max_user_instances) for every lab on the
# machine together: a host past that hangs at boot (its journal says "Failed
# to create inotify object"), so more than about 16 hosts in all need that
# sysctl raised.
MAX_HOSTS = 20

_LAB_NAME = re.compile(r"[a-z][a-z0-9-]{0,11}")

# No hyphen in host names: "pgf-<lab>-<host>" must split back unambiguously,
# and lab names may contain hyphens.
_HOST_NAME = re.compile(r"[a-z][a-z0-9]{0,14}")

# "control" names the machine itself in every host's /etc/hosts.
_RESERVED_HOSTS = frozenset({"control", "localhost"})

_IFNAMSIZ = 15


def check_lab_name(name: str) -> str:
    """Return ``name`` if it is a valid lab name, else raise LabError."""
    if not _LAB_NAME.fullmatch(name):
        raise LabError(
            f"invalid lab name {name!r}: use a lowercase letter followed by up to "
            "11 lowercase letters, digits or hyphens, e.g. `demo` or `ci-2`"
        )
    return name


def check_host_names(hosts: Sequence[str]) -> tuple[str, ...]:
    """Return the host names as a tuple if they are valid, else raise LabError."""
    if not hosts:
        raise LabError("a lab needs at least one host, e.g. `--hosts db1`")
    if len(hosts) > MAX_HOSTS:
        raise LabError(f"a lab has at most {MAX_HOSTS} hosts, {len(hosts)} asked")
    for host in hosts:
        if not _HOST_NAME.fullmatch(host):
            raise LabError(
                f"invalid host name {host!r}: use a lowercase letter followed by "
                "up to 14 lowercase letters or digits, e.g. `db1`"
            )
        if host in _RESERVED_HOSTS:
            raise LabError(f"host name {host!r} is reserved; pick another one")
    duplicates = sorted({host for host in hosts if hosts.count(host) > 1})
    if duplicates:
        raise LabError(f"host names repeat: {', '.join(duplicates)}")
    return tuple(hosts)


def groups_of(host: str) -> tuple[str, ...]:
    """Inventory groups of a host: its name without trailing digits."""
    return (host.rstrip("0123456789"),)


def bridge_name(slot: int) -> str:
    """Bridge interface of the lab using ``slot``."""
    return _ifname(f"pgfb{slot}")


def veth_name(slot: int, index: int) -> str:
    """Machine-side end of the veth pair of host number ``index``."""
    return _ifname(f"pgf{slot}h{index}")


def netns_name(lab: str, host: str) -> str:
    """Network namespace holding a host's eth0."""
    return f"pgf-{lab}-{host}"


def machine_name(lab: str, host: str) -> str:
    """systemd-nspawn machine name of a host."""
    return f"pgf-{lab}-{host}"


def _ifname(name: str) -> str:
    if len(name) > _IFNAMSIZ:
        raise LabError(f"interface name {name!r} exceeds {_IFNAMSIZ} characters")
    return name
