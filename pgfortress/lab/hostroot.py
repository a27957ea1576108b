"""Turning a fresh rootfs copy into one particular lab host, before it boots.

Files are written from the control machine into the copy. The copy is not
trusted to be free of symlinks (``/etc/resolv.conf`` often is one), so every
write replaces the final path component instead of following it and checks
that the directory it lands in is inside the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pgfortress.errors import LabError

from . import hostfiles
from ._system import run

__all__ = ["HostFiles", "prepare_root", "write_into"]


@dataclass(frozen=True)
class HostFiles:
    """File contents shared by every host of a lab."""

    etc_hosts: str
    sources_list: str
    apt_proxy: str
    authorized_key: str


def write_into(root: Path, relative: str, text: str, mode: int = 0o644) -> Path:
    """Create or replace ``root/relative`` without following symlinks."""
    path = root / relative.lstrip("/")
    parent = path.parent
    parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    real_root, real_parent = root.resolve(), parent.resolve()
    if parent.is_symlink() or not real_parent.is_relative_to(real_root):
        raise LabError(f"{parent} leads outside the host root {root}; not writing")
    if path.is_symlink() or path.exists():
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    descriptor = os.open(path, flags, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(mode)
    return path


def prepare_root(root: Path, host: str, shared: HostFiles) -> str:
    """Configure the copy at ``root`` as ``host``; returns its public host key.

    The SSH host key is made here rather than at first boot so the lab can
    pin it in ``known_hosts`` before the host ever answers.
    """
    write_into(root, "etc/hostname", f"{host}\n")
    write_into(root, "etc/hosts", shared.etc_hosts)
    write_into(root, "etc/resolv.conf", hostfiles.render_resolv_conf())
    # Empty: systemd gives the host a machine id of its own at boot.
    write_into(root, "etc/machine-id", "", mode=0o444)
    write_into(root, "etc/apt/sources.list", shared.sources_list)
    for stale in (root / "etc/apt/sources.list.d").glob("*"):
        stale.unlink()
    write_into(root, "etc/apt/apt.conf.d/01pgfortress-proxy", shared.apt_proxy)
    write_into(
        root,
        "etc/ssh/sshd_config.d/pgfortress-lab.conf",
        hostfiles.render_sshd_dropin(),
    )
    (root / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    write_into(root, "root/.ssh/authorized_keys", shared.authorized_key, 0o600)
    return _new_host_key(root, host)


def _new_host_key(root: Path, host: str) -> str:
    ssh_dir = root / "etc/ssh"
    for old in ssh_dir.glob("ssh_host_*"):
        old.unlink()
    key = ssh_dir / "ssh_host_ed25519_key"
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"root@{host}",
            "-f",
            str(key),
        ]
    )
    return public_key(key.with_name(key.name + ".pub"))


def public_key(path: Path) -> str:
    """``type base64`` of an OpenSSH public key file, comment dropped."""
    kind, blob, *_ = path.read_text().split()
    return f"{kind} {blob}"
