"""The lab network: one bridge on the machine, one namespace per host.

Links are made with ``ip`` rather than by systemd-nspawn so every object has a
name derived from the lab state and can be found and removed later, even after
a killed run. Hosts get an address on the bridge subnet and no default route:
the only things they can reach are each other and the machine's bridge
address, where the apt proxy listens.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import LabError
from ._system import run
from .addressing import Network, routes_from_json
from .state import LabHost, LabState

__all__ = [
    "add_host_link",
    "bridge_exists",
    "create_bridge",
    "delete_bridge",
    "delete_host_link",
    "link_exists",
    "machine_routes",
    "netns_exists",
]

NETNS_DIR = Path("/run/netns")


def machine_routes() -> list[Network]:
    """The machine's non-default IPv4 and IPv6 routes."""
    four = run(["ip", "-j", "route", "show", "table", "all"], check=False).stdout
    six = run(["ip", "-j", "-6", "route", "show", "table", "all"], check=False).stdout
    return routes_from_json(four) + routes_from_json(six)


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def bridge_exists(state: LabState) -> bool:
    return link_exists(state.bridge)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def create_bridge(state: LabState) -> None:
    prefix, prefix6 = state.subnet.split("/")[1], state.subnet6.split("/")[1]
    run(["ip", "link", "add", state.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{state.gateway}/{prefix}", "dev", state.bridge])
    # nodad: duplicate address detection would hold the address back a second
    # or more, and nothing else can own an address on a bridge we just made.
    run(
        [
            "ip",
            "addr",
            "add",
            f"{state.gateway6}/{prefix6}",
            "dev",
            state.bridge,
            "nodad",
        ]
    )
    run(["ip", "link", "set", state.bridge, "up"])


def delete_bridge(state: LabState) -> None:
    if bridge_exists(state):
        _delete(["ip", "link", "delete", state.bridge], lambda: bridge_exists(state))


def _delete(argv: list[str], still_there: Callable[[], bool]) -> None:
    """Delete something the kernel may also be removing on its own.

    A veth goes away by itself, asynchronously, once its peer's namespace is
    deleted; between our check and our delete it may vanish, which makes
    ``ip`` fail although the goal is reached. What counts is that it is gone.
    """
    result = run(argv, check=False)
    deadline = time.monotonic() + 5
    while still_there():
        if time.monotonic() > deadline:
            raise LabError(f"`{shlex.join(argv)}` left it in place: {result.stderr}")
        time.sleep(0.05)


def add_host_link(state: LabState, host: LabHost) -> None:
    """A namespace for ``host`` with eth0 cabled to the lab bridge."""
    prefix, prefix6 = state.subnet.split("/")[1], state.subnet6.split("/")[1]
    netns = host.netns
    run(["ip", "netns", "add", netns])
    run(
        [
            "ip",
            "link",
            "add",
            host.veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        ]
    )
    run(["ip", "link", "set", host.veth, "master", state.bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", f"{host.address}/{prefix}", "dev", "eth0"])
    run(
        [
            "ip",
            "-n",
            netns,
            "addr",
            "add",
            f"{host.address6}/{prefix6}",
            "dev",
            "eth0",
            "nodad",
        ]
    )
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def delete_host_link(host: LabHost) -> None:
    """Remove the host's namespace; its veth pair goes with it."""
    if netns_exists(host.netns):
        _delete(["ip", "netns", "delete", host.netns], lambda: netns_exists(host.netns))
    if link_exists(host.veth):
        _delete(["ip", "link", "delete", host.veth], lambda: link_exists(host.veth))
