"""How a lab is doing: process, proxy and SSH health, and what is left of it.

Used by ``lab status`` and ``lab list``, by ``up`` to decide whether a lab
recorded as ready can be kept, and by ``down`` (and the tests) to prove that
nothing of a lab remains on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgfortress.errors import LabError

from . import aptproxy, machine, network, procs, ssh
from ._system import mounts_under, wait_listening
from .names import check_lab_name
from .paths import LabLayout
from .state import LabState, Phase, find_state

__all__ = ["HostStatus", "LabStatus", "problems", "remnants", "status"]


@dataclass(frozen=True)
class HostStatus:
    """One host: do its processes run, does its sshd accept connections."""

    name: str
    address: str
    running: bool
    ssh_port_open: bool


@dataclass(frozen=True)
class LabStatus:
    """A lab as found right now; ``healthy`` when everything answers."""

    state: LabState
    phase: Phase
    proxy_running: bool
    hosts: tuple[HostStatus, ...]

    @property
    def healthy(self) -> bool:
        return (
            self.phase == "ready"
            and self.proxy_running
            and all(h.running and h.ssh_port_open for h in self.hosts)
        )


def status(name: str) -> LabStatus:
    """Current health of lab ``name``; LabError when there is no such lab."""
    name = check_lab_name(name)
    found = find_state(name)
    if found is None:
        raise LabError(
            f"there is no lab named {name!r}: run `pgfortress lab up --name {name}`"
        )
    phase, state = found
    records = procs.read_records(LabLayout(state.dir).run_dir)

    def alive(label: str) -> bool:
        return label in records and procs.is_alive(records[label])

    hosts = tuple(
        HostStatus(
            name=host.name,
            address=host.address,
            running=alive(f"nspawn-{host.name}") and alive(f"init-{host.name}"),
            ssh_port_open=_port_open(host.address),
        )
        for host in state.hosts.values()
    )
    proxy = records.get("apt-proxy")
    serving = proxy is not None and aptproxy.is_serving(proxy, state.gateway)
    return LabStatus(state, phase, serving, hosts)


def problems(state: LabState) -> list[str]:
    """Why a lab recorded as ready is not usable right now (empty if it is)."""
    current = status(state.name)
    found = []
    if not current.proxy_running:
        found.append("apt proxy not running")
    if not network.link_exists(state.bridge):
        found.append(f"bridge {state.bridge} missing")
    for host in current.hosts:
        if not host.running:
            found.append(f"{host.name} not running")
        elif not ssh.login_works(state, host.name):
            found.append(f"{host.name} refuses SSH")
    return found


def remnants(state: LabState) -> list[str]:
    """Anything of ``state``'s lab still on the machine; empty once it is down."""
    found = []
    for entry in procs.read_records(LabLayout(state.dir).run_dir).values():
        if procs.is_alive(entry):
            found.append(f"process {entry.label} (pid {entry.pid})")
    if network.link_exists(state.bridge):
        found.append(f"bridge {state.bridge}")
    for host in state.hosts.values():
        if network.netns_exists(host.netns):
            found.append(f"network namespace {host.netns}")
        if network.link_exists(host.veth):
            found.append(f"veth {host.veth}")
        if (machine.NSPAWN_RUN / "propagate" / host.machine).exists():
            found.append(f"propagate directory of {host.machine}")
        found += [f"mount {p}" for p in mounts_under(network.NETNS_DIR / host.netns)]
    found += [f"mount {point}" for point in mounts_under(state.dir)]
    if state.dir.exists():
        found.append(f"directory {state.dir}")
    return found


def _port_open(address: str) -> bool:
    try:
        wait_listening(address, ssh.SSH_PORT, timeout=0)
    except LabError:
        return False
    return True
