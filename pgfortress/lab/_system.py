"""Thin helpers over the machine: running tools and reading its mount table."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

from pgfortress._logging import logger
from pgfortress.errors import LabError

__all__ = ["mounts_under", "remove_tree", "require_tools", "run", "wait_listening"]

# Tool → Debian package that provides it; named in the error when one is missing.
TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "apt-cacher-ng": "apt-cacher-ng",
    "zstd": "zstd",
    "tar": "tar",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def require_tools() -> None:
    """Fail early, naming the packages to install, if the lab cannot run here."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, systemd-nspawn)")
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing:
        packages = " ".join(missing)
        raise LabError(f"lab tools are missing: run `apt-get install {packages}`")


def run(
    argv: list[str], *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion; LabError with its stderr when it fails."""
    logger.debug("running %s", shlex.join(argv))
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        detail = result.stderr.strip()[-800:] or result.stdout.strip()[-800:]
        raise LabError(
            f"`{shlex.join(argv)}` failed with exit code {result.returncode}: {detail}"
        )
    return result


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    found = []
    prefix = str(path).rstrip("/") + "/"
    with Path("/proc/self/mountinfo").open() as table:
        for line in table:
            point = _unescape(line.split()[4])
            if point == str(path) or point.startswith(prefix):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n")):
        field = field.replace(escape, char)
    return field.replace("\\134", "\\")


def remove_tree(path: Path) -> None:
    """Delete ``path`` recursively, after detaching anything mounted inside.

    An interrupted debootstrap can leave /proc or /sys mounted in its target;
    deleting through such a mount would reach into the live system.
    """
    for point in mounts_under(path):
        logger.info("unmounting %s left behind under %s", point, path)
        run(["umount", "--lazy", str(point)])
    if mounts_under(path):
        raise LabError(f"could not unmount everything under {path}; left in place")
    if path.exists():
        shutil.rmtree(path)


def wait_listening(address: str, port: int, timeout: float) -> None:
    """Return once ``address:port`` accepts TCP connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise LabError(
                    f"nothing listens on {address}:{port} after {timeout:.0f}s "
                    f"({error})"
                ) from error
            time.sleep(0.2)
