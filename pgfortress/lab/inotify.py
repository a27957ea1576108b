"""Room for more hosts: root's inotify instances, which every lab shares.

Each lab host's systemd, logind and getty hold about seven inotify instances,
all counted against root, and Linux allows 128 per user by default
(``fs.inotify.max_user_instances``). A host booted past that limit hangs (its
journal says "Failed to create inotify object"), so ``up`` checks the room
first and says what to do instead of waiting for a boot that never ends.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PER_HOST", "instances_in_use", "limit", "room_problem"]

# Measured: 7 per idle host; one spare for what a deploy starts.
PER_HOST = 8
_LIMIT_FILE = Path("/proc/sys/fs/inotify/max_user_instances")
_INOTIFY = "anon_inode:inotify"


def limit(path: Path = _LIMIT_FILE) -> int | None:
    """The machine's per-user limit, or None where it cannot be read."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def instances_in_use(proc: Path = Path("/proc"), uid: int = 0) -> int:
    """Inotify instances held by ``uid``'s processes (each open instance once)."""
    count = 0
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for fd in fds:
            try:
                if fd.readlink() == Path(_INOTIFY):
                    count += 1
            except OSError:
                continue
    return count


def room_problem(
    hosts: int, allowed: int | None, in_use: int, per_host: int = PER_HOST
) -> str | None:
    """Why ``hosts`` more hosts would not boot, or None if they fit."""
    if allowed is None:
        return None
    needed = hosts * per_host
    left = max(allowed - in_use, 0)
    if needed <= left:
        return None
    return (
        f"{hosts} hosts need about {needed} inotify instances, and root has "
        f"{left} of {allowed} left (fs.inotify.max_user_instances, shared by "
        "every lab on this machine): a host past the limit hangs at boot. Take "
        "other labs down, boot fewer hosts, or raise the limit, e.g. "
        "`sysctl fs.inotify.max_user_instances=1024`"
    )
