"""The lab's public surface, pinned so that changes to it are deliberate."""

from __future__ import annotations

import pgfortress.lab


def test_public_names() -> None:
    assert sorted(pgfortress.lab.__all__) == [
        "DEFAULT_HOSTS",
        "HostStatus",
        "LabHost",
        "LabState",
        "LabStatus",
        "down",
        "lab_dir",
        "list_labs",
        "load",
        "remnants",
        "status",
        "up",
    ]


def test_state_fields_the_project_relies_on() -> None:
    fields = pgfortress.lab.LabState.__dataclass_fields__
    assert {
        "name", "dir", "subnet", "subnet6", "gateway", "gateway6", "bridge",
        "apt_proxy", "ssh_key", "known_hosts", "ssh_config", "hosts",
    } <= set(fields)  # fmt: skip
    host_fields = pgfortress.lab.LabHost.__dataclass_fields__
    assert {"name", "address", "address6", "groups", "machine"} <= set(host_fields)
