"""Host checks run with testinfra against any inventory host.

    pytest tests/host --hosts=ssh://db1 --ssh-config=LAB/ssh_config \
        --pgf-inventory=inventories/lab.py

``--pgf-inventory`` names the pyinfra inventory the hosts were deployed from,
so the checks compare the live state with what that inventory asked for.
Without it, the checks hold the hosts to pgfortress's defaults.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgfortress.plan import PostgresLayout, layout_for, resolve_listen
from pgfortress.spec import PostgresHostSpec, from_host_data


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pgf-inventory",
        default=None,
        help="pyinfra inventory file the hosts were deployed from",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("hosts", default=None):
        raise pytest.UsageError(
            "tests/host checks remote hosts: pass --hosts=ssh://NAME (and "
            "--ssh-config) so they never run against this machine"
        )


def _inventory_hosts(path: Path) -> dict[str, dict[str, Any]]:
    """Host name → merged data, read the way pyinfra reads an inventory file."""
    hosts: dict[str, dict[str, Any]] = {}
    for name, value in runpy.run_path(str(path)).items():
        if name.startswith("_"):
            continue
        members, group_data = _as_group(value)
        for member in members:
            host_name, host_data = (member, {}) if isinstance(member, str) else member
            merged = {**hosts.get(host_name, {}), **group_data, **host_data}
            merged.setdefault("_groups", []).append(name)
            hosts[host_name] = merged
    return hosts


def _as_group(value: Any) -> tuple[list[Any], Mapping[str, Any]]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
        return value[0], value[1]
    if isinstance(value, list) and all(isinstance(v, str | tuple) for v in value):
        return value, {}
    return [], {}


@dataclass(frozen=True)
class Expected:
    """What the inventory asked of one host, with the host's own facts filled in."""

    spec: PostgresHostSpec
    layout: PostgresLayout
    listen: list[str]


@pytest.fixture(scope="module")
def inventory(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    path = request.config.getoption("pgf_inventory")
    return _inventory_hosts(Path(path)) if path else {}


@pytest.fixture
def expected(host: Any, inventory: dict[str, dict[str, Any]]) -> Expected:
    name = host.backend.get_hostname()
    data = inventory.get(name) or {
        "postgres_listen": ["*"],
        "postgres_tls": {"ca_dir": "/nonexistent"},
    }
    spec = from_host_data(name, data)
    release = host.system_info.release or "0"
    layout = layout_for(name, int(release.split(".")[0]), spec.version)
    links = json.loads(host.check_output("ip -j addr show"))
    interfaces = {
        link["ifname"]: [a["local"] for a in link.get("addr_info", [])]
        for link in links
    }
    return Expected(spec, layout, resolve_listen(name, spec.listen, interfaces))


@pytest.fixture
def psql(host: Any) -> Any:
    def run(query: str) -> str:
        command = host.run(
            "runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -c %s", query
        )
        assert command.rc == 0, command.stderr
        return str(command.stdout).strip()

    return run
