"""Host checks run with testinfra against any inventory host.

    pytest tests/host --hosts=ssh://db1 --ssh-config=LAB/ssh_config \
        --pgf-inventory=inventories/lab.py

``--pgf-inventory`` names the pyinfra inventory the hosts were deployed from,
so the checks compare the live state with what that inventory asked for.
Without it, the checks hold the hosts to pgfortress's defaults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgfortress.audit.inventory import inventory_hosts
from pgfortress.audit.plugin import check_control_ids, register_marker
from pgfortress.plan import PostgresLayout, layout_for, resolve_listen
from pgfortress.plan.layout import CLUSTERS_COMMAND, installed_majors
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
    register_marker(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A typo in a control id fails every run, not only audits.
    check_control_ids(items)


@dataclass(frozen=True)
class Expected:
    """What the inventory asked of one host, with the host's own facts filled in."""

    spec: PostgresHostSpec
    layout: PostgresLayout
    listen: list[str]


@pytest.fixture(scope="module")
def inventory(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    path = request.config.getoption("pgf_inventory")
    return inventory_hosts(Path(path)) if path else {}


@pytest.fixture
def postgres_host(host: Any, inventory: dict[str, dict[str, Any]]) -> Any:
    """The host, when the inventory deploys PostgreSQL there (its ``db`` group).

    On any other inventory host the PostgreSQL checks are skipped with the
    reason, which the audit reports as "not applicable" for that host.
    """
    name = host.backend.get_hostname()
    groups = inventory.get(name, {}).get("_groups", ["db"])
    if "db" not in groups:
        pytest.skip(f"{name} is not in the inventory's db group: no PostgreSQL there")
    return host


@pytest.fixture
def expected(postgres_host: Any, inventory: dict[str, dict[str, Any]]) -> Expected:
    host = postgres_host
    name = host.backend.get_hostname()
    data = inventory.get(name) or {
        "postgres_listen": ["*"],
        "postgres_tls": {"ca_dir": "/nonexistent"},
    }
    spec = from_host_data(name, data)
    release = host.system_info.release or "0"
    # The same choice of major as the deploy: inventory, clusters, release.
    clusters = host.run(CLUSTERS_COMMAND).stdout.splitlines()
    layout = layout_for(
        name, int(release.split(".")[0]), spec.version, installed_majors(clusters)
    )
    links = json.loads(host.check_output("ip -j addr show"))
    interfaces = {
        link["ifname"]: [a["local"] for a in link.get("addr_info", [])]
        for link in links
    }
    return Expected(spec, layout, resolve_listen(name, spec.listen, interfaces))


@pytest.fixture
def psql(postgres_host: Any) -> Any:
    """Run one query as the superuser over the socket; its output, stripped."""

    def run(query: str, database: str = "postgres") -> str:
        command = postgres_host.run(
            "runuser -u postgres -- psql -X -A -t -v ON_ERROR_STOP=1 -d %s -c %s",
            database,
            query,
        )
        assert command.rc == 0, command.stderr
        return str(command.stdout).strip()

    return run
