"""What a lab is: its networks, hosts and SSH files, persisted as JSON.

``lab.json`` is written twice by ``up``: first with phase ``building`` as soon
as the lab's network slot is chosen (so a concurrent ``up`` of another lab sees
the slot as taken and a killed run can be cleaned up), then with phase
``ready`` once every host answers over SSH.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pgfortress._logging import logger
from pgfortress.errors import LabError

from .addressing import Allocation
from .names import bridge_name, groups_of, machine_name, netns_name, veth_name
from .paths import LabLayout, lab_dir, labs_root

__all__ = [
    "LabHost",
    "LabState",
    "Phase",
    "find_state",
    "list_labs",
    "load",
    "plan_state",
    "read_state",
    "write_state",
]

Phase = Literal["building", "ready"]
_FORMAT = 1


@dataclass(frozen=True)
class LabHost:
    """One booted host of a lab."""

    name: str
    address: str
    address6: str
    groups: tuple[str, ...]
    machine: str
    netns: str
    veth: str


@dataclass(frozen=True)
class LabState:
    """A lab as the rest of pgfortress sees it."""

    name: str
    dir: Path
    slot: int
    subnet: str
    subnet6: str
    gateway: str
    gateway6: str
    bridge: str
    apt_proxy: str
    ssh_key: Path
    known_hosts: Path
    ssh_config: Path
    hosts: dict[str, LabHost]
    # The Debian release every host runs (pgfortress.lab.platforms); hosts
    # booted from an image tarball instead of the platform's fresh root
    # filesystem, host name to tarball path.
    platform: str = "debian12"
    images: dict[str, str] = field(default_factory=dict)

    def ssh_argv(self, host: str, *command: str) -> list[str]:
        """Argument list running ``command`` on ``host`` over the lab's SSH.

        ssh hands the remote shell one string; ``command`` is quoted into it so
        that each argument arrives as given.
        """
        remote = [shlex.join(command)] if command else []
        return ["ssh", "-F", str(self.ssh_config), host, "--", *remote]


def plan_state(
    name: str,
    hosts: Sequence[str],
    allocation: Allocation,
    layout: LabLayout,
    platform: str = "debian12",
    images: dict[str, str] | None = None,
) -> LabState:
    """The state a lab will have once up; pure, nothing is created."""
    planned = {
        host: LabHost(
            name=host,
            address=str(allocation.host(index)),
            address6=str(allocation.host6(index)),
            groups=groups_of(host),
            machine=machine_name(name, host),
            netns=netns_name(name, host),
            veth=veth_name(allocation.slot, index),
        )
        for index, host in enumerate(hosts)
    }
    return LabState(
        name=name,
        dir=layout.dir,
        slot=allocation.slot,
        subnet=str(allocation.subnet),
        subnet6=str(allocation.subnet6),
        gateway=str(allocation.gateway),
        gateway6=str(allocation.gateway6),
        bridge=bridge_name(allocation.slot),
        apt_proxy=f"http://{allocation.gateway}:3142",
        ssh_key=layout.ssh_key,
        known_hosts=layout.known_hosts,
        ssh_config=layout.ssh_config,
        hosts=planned,
        platform=platform,
        images=dict(images or {}),
    )


def to_json(state: LabState, phase: Phase) -> str:
    hosts = {
        name: {**vars(host), "groups": list(host.groups)}
        for name, host in state.hosts.items()
    }
    fields: dict[str, Any] = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in vars(state).items()
        if key != "hosts"
    }
    document = {"format": _FORMAT, "phase": phase, **fields, "hosts": hosts}
    return json.dumps(document, indent=2) + "\n"


def from_json(text: str) -> tuple[Phase, LabState]:
    document = json.loads(text)
    if document.pop("format", None) != _FORMAT:
        raise ValueError("unknown lab.json format")
    phase: Phase = document.pop("phase")
    hosts = {
        name: LabHost(**{**fields, "groups": tuple(fields["groups"])})
        for name, fields in document.pop("hosts").items()
    }
    for key in ("dir", "ssh_key", "known_hosts", "ssh_config"):
        document[key] = Path(document[key])
    return phase, LabState(**document, hosts=hosts)


def write_state(state: LabState, phase: Phase) -> None:
    """Replace ``lab.json`` atomically, so readers never see half a file."""
    path = LabLayout(state.dir).state_file
    scratch = path.with_suffix(".tmp")
    scratch.write_text(to_json(state, phase))
    scratch.replace(path)


def read_state(name: str) -> tuple[Phase, LabState] | None:
    """Phase and state of lab ``name``, or None when it has no ``lab.json``."""
    path = LabLayout(lab_dir(name)).state_file
    try:
        return from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        raise LabError(
            f"{path} is unreadable ({error}): run `pgfortress lab down --name "
            f"{name}` and bring the lab up again"
        ) from error


def load(name: str) -> LabState:
    """State of a lab that is up; LabError naming the fix otherwise."""
    found = read_state(name)
    if found is None:
        raise LabError(
            f"there is no lab named {name!r}: run `pgfortress lab up --name {name}`"
        )
    phase, state = found
    if phase != "ready":
        raise LabError(
            f"lab {name!r} was not brought up completely (an earlier run was "
            f"interrupted): run `pgfortress lab up --name {name}` to rebuild it"
        )
    return state


def find_state(name: str) -> tuple[Phase, LabState] | None:
    """State in whatever phase; None if missing or unreadable."""
    try:
        return from_json(LabLayout(lab_dir(name)).state_file.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        logger.warning("lab %s: lab.json unreadable (%s)", name, error)
        return None


def list_labs() -> list[str]:
    """Names of the labs that have a directory on this machine."""
    root = labs_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "lab.json").is_file())
