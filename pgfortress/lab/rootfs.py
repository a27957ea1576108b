"""The root filesystem every lab host of a platform starts from.

It is built once per platform with debootstrap, packed as a zstd tarball in
the cache and reused by every lab: each host gets a fresh copy unpacked from
it. The tarball's name carries the platform and a hash of the suite and
package list, so changing either builds a new one instead of reusing a stale
one.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import IO

from pgfortress._logging import logger
from pgfortress.errors import LabError

from ._system import remove_tree, run
from .platforms import Platform
from .progress import Progress

__all__ = [
    "PACKAGES",
    "cache_key",
    "ensure_tarball",
    "extract",
    "tarball_path",
]

# What a host needs to boot, take SSH logins and be driven by pyinfra.
PACKAGES = (
    "ca-certificates",
    "dbus",
    "iproute2",
    "netbase",
    "openssh-server",
    "procps",
    "python3",
    "sudo",
    "systemd",
    "systemd-sysv",
)

_BUILD_TIMEOUT = 1800
_PROGRESS_EVERY = 5.0
_TAR_OPTIONS = ["--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*"]


def cache_key(suite: str, packages: tuple[str, ...]) -> str:
    """Short hash naming a tarball built from ``suite`` and ``packages``."""
    text = suite + "\n" + "\n".join(sorted(packages))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def tarball_path(cache: Path, platform: str, key: str) -> Path:
    return cache / "rootfs" / f"{platform}-{key}.tar.zst"


def ensure_tarball(
    cache: Path, mirror: str, platform: Platform, progress: Progress
) -> Path:
    """Path of the platform's tarball, building it first if the cache lacks it."""
    key = cache_key(platform.suite, PACKAGES)
    tarball = tarball_path(cache, platform.name, key)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    if tarball.exists():
        progress.say(f"root filesystem: reusing {tarball}")
        return tarball
    with (tarball.parent / ".build.lock").open("w") as lock:
        if _locked_by_other(lock):
            progress.say("root filesystem: waiting for another run building it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            _build(tarball, mirror, platform.suite, progress)
    return tarball


def _locked_by_other(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    return False


def _build(tarball: Path, mirror: str, suite: str, progress: Progress) -> None:
    target = tarball.with_name(f"build-{os.getpid()}")
    log = tarball.with_name(tarball.name.replace(".tar.zst", ".debootstrap.log"))
    remove_tree(target)
    try:
        with progress.step(f"building root filesystem with debootstrap ({suite})"):
            _debootstrap(target, mirror, suite, log, progress)
        with progress.step(f"packing root filesystem into {tarball.name}"):
            scratch = tarball.with_name(f".{tarball.name}.{os.getpid()}")
            run(
                ["tar", *_TAR_OPTIONS, "-C", str(target), "-cf", str(scratch), "."],
                timeout=600,
            )
            scratch.replace(tarball)
    finally:
        remove_tree(target)
        for leftover in tarball.parent.glob(f".{tarball.name}.{os.getpid()}"):
            leftover.unlink()


def _debootstrap(
    target: Path, mirror: str, suite: str, log: Path, progress: Progress
) -> None:
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        suite,
        str(target),
        mirror,
    ]
    logger.debug("debootstrap log: %s", log)
    began = last_shown = time.monotonic()
    with (
        log.open("w") as output,
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            output.write(line)
            now = time.monotonic()
            if now - began > _BUILD_TIMEOUT:
                child.kill()
                raise LabError(f"debootstrap took over {_BUILD_TIMEOUT}s; see {log}")
            # One line every few seconds shows progress without flooding.
            if line.startswith(("I: ", "E: ", "W: ")) and now - last_shown >= (
                _PROGRESS_EVERY
            ):
                progress.say(f"  debootstrap: {line[3:].strip()}")
                last_shown = now
    if child.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise LabError(
            f"debootstrap failed (exit {child.returncode}); full log in {log}:\n{tail}"
        )


def extract(tarball: Path, destination: Path) -> None:
    """Unpack a fresh copy of a root filesystem tarball into ``destination``."""
    destination.mkdir(parents=True)
    run(
        ["tar", *_TAR_OPTIONS, "-xpf", str(tarball), "-C", str(destination)],
        timeout=600,
    )
