"""The lab: disposable Debian 12 hosts on this machine, reached over SSH.

Hosts are booted with systemd-nspawn from a cached debootstrap root
filesystem, each in its own network namespace on a per-lab bridge, with no
route off the lab. apt on the hosts goes through a per-lab apt-cacher-ng on the
bridge. The rest of pgfortress uses :func:`up`, :func:`load` and the returned
:class:`LabState` (addresses, groups, ``ssh_config``) to deploy to the hosts
and test them; production code never imports this package.

Needs root and the Debian packages debootstrap, systemd-container,
apt-cacher-ng, zstd, iproute2 and openssh-client.
"""

from __future__ import annotations

from .health import HostStatus, LabStatus, remnants, status
from .lifecycle import down, up
from .names import DEFAULT_HOSTS
from .paths import lab_dir
from .state import LabHost, LabState, list_labs, load

__all__ = [
    "DEFAULT_HOSTS",
    "HostStatus",
    "LabHost",
    "LabState",
    "LabStatus",
    "down",
    "lab_dir",
    "list_labs",
    "load",
    "remnants",
    "status",
    "up",
]
