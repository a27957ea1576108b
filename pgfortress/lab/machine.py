"""Booting and stopping lab hosts with systemd-nspawn.

Each host runs ``systemd-nspawn --boot`` in its own session, cgroup and
network namespace. Two processes per host are recorded: systemd-nspawn itself
and the container's init (its child). Both are needed because killing
systemd-nspawn with SIGKILL does not stop the container: its init lives on,
re-parented, with every service under it.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from pgfortress._logging import logger
from pgfortress.errors import LabError

from . import procs
from ._system import remove_tree
from .cgroups import enter_argv, machine_cgroups, remove_cgroups
from .network import NETNS_DIR
from .paths import LabLayout
from .state import LabHost

__all__ = ["boot", "cleanup_host", "log_tail", "nspawn_argv", "record_init", "stop"]

NSPAWN_ENV = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
NSPAWN_RUN = Path("/run/systemd/nspawn")
_INIT_NAMES = ("systemd", "init")
_COLOUR = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def nspawn_argv(root: Path, host: LabHost) -> list[str]:
    """Command line booting ``root`` as ``host``."""
    return [
        "systemd-nspawn",
        "--boot",
        # No systemd-machined here: nothing to register with, no unit to make.
        "--register=no",
        "--keep-unit",
        f"--directory={root}",
        f"--machine={host.machine}",
        f"--hostname={host.name}",
        f"--network-namespace-path={NETNS_DIR / host.netns}",
        "--resolv-conf=off",
        "--link-journal=no",
        "--console=passive",
        # systemd's BPF-based unit sandboxing (IPAddressDeny= and friends)
        # needs the first two inside the host; nftables needs CAP_NET_ADMIN,
        # which acts on the host's own network namespace only (nspawn grants
        # it itself to a container with a private network).
        "--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN",
        "--system-call-filter=bpf",
    ]


def boot(layout: LabLayout, host: LabHost) -> procs.ProcessRecord:
    """Start the host and record its systemd-nspawn process."""
    argv = nspawn_argv(layout.host_root(host.name), host)
    wrapped = enter_argv(machine_cgroups(host.machine), argv)
    pid = procs.spawn(wrapped, layout.host_log(host.name), NSPAWN_ENV)
    entry = procs.record(layout.run_dir, f"nspawn-{host.name}", pid, argv)
    if not procs.wait_for_exec(pid, argv, timeout=10):
        raise LabError(
            f"systemd-nspawn for host {host.name} did not start; last lines of "
            f"{layout.host_log(host.name)}:\n{log_tail(layout, host)}"
        )
    return entry


def record_init(
    layout: LabLayout, host: LabHost, nspawn: procs.ProcessRecord, timeout: float
) -> procs.ProcessRecord:
    """Find and record the container's init, the child of systemd-nspawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.is_alive(nspawn):
            break
        for child in procs.children_of(nspawn.pid):
            argv = procs.cmdline(child)
            if argv and Path(argv[0]).name in _INIT_NAMES:
                return procs.record(layout.run_dir, f"init-{host.name}", child, argv)
        time.sleep(0.1)
    raise LabError(
        f"host {host.name} did not start its init within {timeout:.0f}s; "
        f"last lines of {layout.host_log(host.name)}:\n{log_tail(layout, host)}"
    )


def stop(layout: LabLayout, timeout: float = 30) -> None:
    """Shut every recorded host down: orderly first, then SIGKILL.

    Works from the process records alone, so it also stops hosts of a lab
    whose ``lab.json`` was lost.
    """
    records = procs.read_records(layout.run_dir).values()
    nspawns = [entry for entry in records if entry.label.startswith("nspawn-")]
    inits = [entry for entry in records if entry.label.startswith("init-")]
    # SIGTERM makes systemd-nspawn ask the container for a clean poweroff.
    slow = procs.stop(nspawns, signal.SIGTERM, timeout)
    if slow:
        logger.info("hosts did not power off in %ss, killing: %s", timeout, slow)
        procs.kill(nspawns)
    # Only an init orphaned by a killed systemd-nspawn is still alive here;
    # killing the init of a PID namespace ends every process in it.
    stuck = procs.kill(inits)
    if stuck:
        raise LabError(f"lab processes refuse to exit: {', '.join(stuck)}")


def cleanup_host(layout: LabLayout, host: LabHost) -> None:
    """Remove what systemd-nspawn leaves on the machine, once it is gone."""
    root = layout.host_root(host.name)
    if root.is_dir():
        # The image lock a killed systemd-nspawn could not release.
        info = root.stat()
        (NSPAWN_RUN / "locks" / f"inode-{info.st_dev}:{info.st_ino}").unlink(
            missing_ok=True
        )
    propagate = NSPAWN_RUN / "propagate" / host.machine
    if propagate.is_dir():
        remove_tree(propagate)
    busy = remove_cgroups(machine_cgroups(host.machine))
    if busy:
        raise LabError(
            f"cgroups of host {host.name} still hold processes: "
            f"{', '.join(map(str, busy))}; they were not started by this lab run"
        )
    remove_tree(layout.host_dir(host.name))


def log_tail(layout: LabLayout, host: LabHost, lines: int = 20) -> str:
    """The last lines of a host's console log, colour codes removed."""
    try:
        text = layout.host_log(host.name).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    plain = _COLOUR.sub("", text)
    return "\n".join(plain.splitlines()[-lines:])
