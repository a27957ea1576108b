"""Processes the lab starts and later stops: recorded, matched, never guessed.

Each long-running process (a host's systemd-nspawn, the container's init, the
apt proxy) is recorded in the lab's ``run/`` directory with its pid, its
argument list and its start time. A pid is only ever signalled while
``/proc/<pid>`` still shows that same argument list and start time, so a pid
reused by an unrelated process is left alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pgfortress._logging import logger

__all__ = [
    "ProcessRecord",
    "children_of",
    "cmdline",
    "forget",
    "is_alive",
    "kill",
    "listens_on",
    "read_records",
    "record",
    "spawn",
    "stop",
    "wait_for_exec",
]

# Popen objects of processes started by this Python process: polling them
# reaps the zombie once the process ends (and keeps Popen from warning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class ProcessRecord:
    label: str
    pid: int
    argv: tuple[str, ...]
    started: int


_EXEC_TIMEOUT = 10.0


def spawn(argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start a daemon in its own session, output appended to ``log``."""
    with log.open("ab") as output:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    _CHILDREN[child.pid] = child
    # Popen returns once the exec has begun, but the kernel fills in the new
    # program's command line a moment later; until then /proc shows none, and
    # a caller checking the process by its argv would take it for gone.
    wait_for_exec(child.pid, argv, timeout=_EXEC_TIMEOUT)
    return child.pid


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in parentheses may itself contain spaces or ")".
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def cmdline(pid: int) -> tuple[str, ...] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return tuple(raw.decode(errors="replace").split("\0")[:-1])


def wait_for_exec(pid: int, argv: list[str], timeout: float) -> bool:
    """Wait until ``pid`` runs ``argv``; False if it ended or never got there.

    A wrapper started in its place (see :mod:`.cgroups`) needs a moment
    before it becomes the real command.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        stat = _stat(pid)
        if stat is None or stat[0] in "ZX":
            return False
        if cmdline(pid) == tuple(argv):
            return True
        time.sleep(0.02)
    return False


def listens_on(pid: int, address: str, port: int) -> bool:
    """True if ``pid`` itself holds the TCP listening socket ``address:port``.

    A TCP connect is not proof: a wildcard listener of another program would
    answer on the lab's address just as well.
    """
    wanted = f"{_proc_net_ipv4(address)}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == _TCP_LISTEN:
            inodes.add(f"socket:[{fields[9]}]")
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False
    for descriptor in descriptors:
        try:
            if str(descriptor.readlink()) in inodes:
                return True
        except OSError:
            continue
    return False


def _proc_net_ipv4(address: str) -> str:
    # /proc/net/tcp prints the address as a native-endian 32-bit number.
    packed = socket.inet_aton(address)
    return f"{int.from_bytes(packed, sys.byteorder):08X}"


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pid:
                found.append(int(entry.name))
    return found


def record(run_dir: Path, label: str, pid: int, argv: Iterable[str]) -> ProcessRecord:
    """Remember a process we started, to find and stop it later."""
    stat = _stat(pid)
    started = stat[2] if stat else 0
    entry = ProcessRecord(label, pid, tuple(argv), started)
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    document = {"pid": pid, "argv": list(entry.argv), "started": started}
    (run_dir / f"{label}.json").write_text(json.dumps(document) + "\n")
    return entry


def read_records(run_dir: Path) -> dict[str, ProcessRecord]:
    """Every recorded process of a lab, by label."""
    found = {}
    for path in sorted(run_dir.glob("*.json")) if run_dir.is_dir() else []:
        document = json.loads(path.read_text())
        found[path.stem] = ProcessRecord(
            path.stem, document["pid"], tuple(document["argv"]), document["started"]
        )
    return found


def forget(run_dir: Path, label: str) -> None:
    (run_dir / f"{label}.json").unlink(missing_ok=True)


def is_alive(entry: ProcessRecord) -> bool:
    """True while the recorded process itself (not a reused pid) still runs.

    A child of this process that is gone is also reaped here, so it leaves no
    zombie: it may exit between any two of these reads, so reaping only
    before them could miss it.
    """
    stat = _stat(entry.pid)
    same = stat is not None and stat[0] not in "ZX" and stat[2] == entry.started
    if same and cmdline(entry.pid) == entry.argv:
        return True
    _reap(entry.pid, settle=1.0)
    return False


def stop(entries: Iterable[ProcessRecord], sig: int, timeout: float) -> list[str]:
    """Signal the live ones, wait up to ``timeout`` s; labels still alive."""
    live = [entry for entry in entries if is_alive(entry)]
    for entry in live:
        logger.debug("sending %s to %s (pid %d)", sig, entry.label, entry.pid)
        os.kill(entry.pid, sig)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        live = [entry for entry in live if is_alive(entry)]
    return [entry.label for entry in live]


def kill(entries: Iterable[ProcessRecord]) -> list[str]:
    """SIGKILL the live ones; labels that still refuse to go away."""
    return stop(entries, signal.SIGKILL, timeout=10)


def running(pid: int) -> bool:
    """True while a child this process spawned has not exited (by its handle)."""
    child = _CHILDREN.get(pid)
    return child is not None and child.poll() is None


def discard(pid: int) -> None:
    """Kill a child this process spawned, through its own handle.

    The recorded checks (start time, argv) protect against signalling a
    reused pid later on; right after our own spawn the handle is the surest
    way to make sure a proxy that failed to start leaves nothing behind.
    """
    child = _CHILDREN.pop(pid, None)
    if child is not None and child.poll() is None:
        child.kill()
        child.wait(timeout=10)


def _reap(pid: int, settle: float = 0.0) -> None:
    """Collect a child of ours that has exited; wait up to ``settle`` s for one
    that is still on its way out (its /proc entry already says it is gone)."""
    child = _CHILDREN.get(pid)
    if child is None:
        return
    if not settle:
        child.poll()
    else:
        try:
            child.wait(timeout=settle)
        except subprocess.TimeoutExpired:
            return
    if child.returncode is not None:
        del _CHILDREN[pid]
