"""Where labs and the lab cache live on the control machine.

``PGFORTRESS_HOME`` (default ``/var/lib/pgfortress``) holds one directory per
lab under ``labs/``; ``PGFORTRESS_CACHE`` (default ``/var/cache/pgfortress``)
holds what is worth keeping between labs: root filesystem tarballs and each
lab name's apt cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .names import check_lab_name

__all__ = ["LabLayout", "cache_root", "lab_dir", "labs_root"]


def labs_root() -> Path:
    """Directory holding one subdirectory per lab."""
    home = os.environ.get("PGFORTRESS_HOME") or "/var/lib/pgfortress"
    return Path(home) / "labs"


def cache_root() -> Path:
    """Directory for rootfs tarballs and apt caches, kept between labs."""
    return Path(os.environ.get("PGFORTRESS_CACHE") or "/var/cache/pgfortress")


def lab_dir(name: str) -> Path:
    """Directory of lab ``name`` (which need not exist)."""
    return labs_root() / check_lab_name(name)


@dataclass(frozen=True)
class LabLayout:
    """Files inside one lab directory."""

    dir: Path

    @property
    def state_file(self) -> Path:
        return self.dir / "lab.json"

    @property
    def ssh_key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def run_dir(self) -> Path:
        """Records of the processes the lab started, one JSON file each."""
        return self.dir / "run"

    @property
    def acng_dir(self) -> Path:
        return self.dir / "acng"

    def host_dir(self, host: str) -> Path:
        return self.dir / "hosts" / host

    def host_root(self, host: str) -> Path:
        return self.host_dir(host) / "root"

    def host_log(self, host: str) -> Path:
        return self.host_dir(host) / "nspawn.log"
