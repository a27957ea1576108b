"""End to end: the nftables host firewall on db1, gw1, client1 and cache1.

One lab per platform (Debian 12, then Debian 13). ``deploys/site.py`` runs
twice with
``firewall_admin_networks`` naming the control machine (the lab's gateway
address), so every host gets the firewall, db1 PostgreSQL too; the second
run must change nothing. Reachability is then proved with plain TCP
connects: a dropped packet times out, an admitted one connects.

Lab hosts cannot reboot (systemd-nspawn runs them directly, and a reboot
ends the host), so what a boot does is proved instead: the nftables service
is enabled, and stopping it (which flushes every rule) then starting it
(which loads /etc/nftables.conf, as at boot) brings the same table back.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pgfortress import tls
from pgfortress.lab import LabState
from pgfortress.plan.firewall import RULES_FILE, render_nftables
from pgfortress.plan.firewall_apply import STATE_FILE, firewall_script
from pgfortress.spec.firewall import firewall_from_host_data

from ._platform_labs import platform_lab
from .conftest import (
    REPO,
    DeployRun,
    lab_name,
    run_deploy,
    run_host_checks,
    ssh,
    ssh_run,
)

pytestmark = pytest.mark.lab

# Each platform on its own lab (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("fw"), "debian13": lab_name("fw13")}
HOSTS = ["db1", "gw1", "client1", "cache1"]
GATEWAY_PORT = 8443
DIGEST = "nft -s list table inet pgfortress | sha256sum | cut -d ' ' -f 1"
PROBE = """
import json, socket, sys
found = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        found[f"{host} {port}"] = "connected"
    except OSError as error:
        found[f"{host} {port}"] = type(error).__name__
print(json.dumps(found))
"""


@dataclass(frozen=True)
class FirewallLab:
    lab: LabState
    runs: list[DeployRun]

    def admin(self, *networks: str) -> list[str]:
        """pyinfra arguments setting firewall_admin_networks on every host."""
        nets = list(networks) or [f"{self.lab.gateway}/32", f"{self.lab.gateway6}/128"]
        return ["--data", f"firewall_admin_networks={json.dumps(nets)}"]

    def deploy(self, deploy: str, *networks: str) -> DeployRun:
        return run_deploy(self.lab, deploy, extra=self.admin(*networks))

    def inventory(self) -> str:
        """The lab inventory with the firewall data, for testinfra's checks."""
        path = self.lab.dir / "firewall_inventory.py"
        admin = [f"{self.lab.gateway}/32", f"{self.lab.gateway6}/128"]
        path.write_text(
            "import runpy as _runpy\n"
            f"_lab = _runpy.run_path({str(REPO / 'inventories' / 'lab.py')!r})\n"
            f"_admin = {admin!r}\n"
            "for _group, _value in list(_lab.items()):\n"
            "    if isinstance(_value, tuple) and not _group.startswith('_'):\n"
            "        _hosts, _data = _value\n"
            "        globals()[_group] = "
            "(_hosts, {**_data, 'firewall_admin_networks': _admin})\n"
        )
        return str(path)


def _deploy_twice(state: LabState) -> FirewallLab:
    tls.init_ca(state.dir / "ca", f"pgfortress lab {state.name} CA")
    done = FirewallLab(state, [])
    for _ in range(2):
        run = done.deploy("deploys/site.py")
        assert run.returncode == 0, run.output[-4000:]
        done.runs.append(run)
    return done


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def deployed(request: pytest.FixtureRequest) -> Iterator[FirewallLab]:
    # Four hosts a lab: one lab at a time (see _platform_labs.MAX_HOSTS_AHEAD).
    yield from platform_lab(request, LAB_NAMES, HOSTS, _deploy_twice)


def probe(lab: LabState, source: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """TCP connects from a lab host: "connected", or the error's name."""
    argv = shlex.quote(json.dumps(targets))
    found: dict[str, str] = json.loads(
        ssh(lab, source, f"python3 - {argv}", stdin=PROBE)
    )
    return found


def probe_here(targets: list[tuple[str, int]]) -> dict[str, str]:
    """The same connects from the control machine."""
    found = {}
    for host, port in targets:
        try:
            socket.create_connection((host, port), timeout=3).close()
            found[f"{host} {port}"] = "connected"
        except OSError as error:
            found[f"{host} {port}"] = type(error).__name__
    return found


def expect(targets: list[tuple[str, int]], outcome: str) -> dict[str, str]:
    return {f"{host} {port}": outcome for host, port in targets}


def test_the_first_deploy_loads_and_confirms_the_firewall_the_second_changes_nothing(
    deployed: FirewallLab,
) -> None:
    first, second = deployed.runs
    for host in deployed.lab.hosts:
        confirmed = (
            rf"\[{host}\]\s+pgfortress: confirmed: a new connection reached sshd"
        )
        assert re.search(confirmed, first.output), first.output[-3000:]
    assert any("Load the firewall" in op for op in first.changed)
    assert second.changed == []
    assert second.grand_total[1] == 0, second.output[-3000:]


def test_from_the_client_only_the_gateway_port_answers(deployed: FirewallLab) -> None:
    lab = deployed.lab
    db, gw = lab.hosts["db1"], lab.hosts["gw1"]
    started = ssh(
        lab,
        "gw1",
        f"nohup python3 -m http.server {GATEWAY_PORT} --bind :: "
        ">/dev/null 2>&1 </dev/null & echo $!",
    )
    pid = int(started.strip())
    try:
        time.sleep(1)
        gateway = [(gw.address, GATEWAY_PORT), (gw.address6, GATEWAY_PORT)]
        closed = [
            (db.address, 5432),
            (db.address6, 5432),
            (db.address, 22),
            (db.address6, 22),
            (gw.address, 22),
        ]
        found = probe(lab, "client1", gateway + closed)
    finally:
        ssh(lab, "gw1", f"kill {pid}")
    assert found == expect(gateway, "connected") | expect(closed, "TimeoutError")


def test_the_gateway_reaches_postgresql(deployed: FirewallLab) -> None:
    db = deployed.lab.hosts["db1"]
    targets = [(db.address, 5432), (db.address6, 5432)]
    assert probe(deployed.lab, "gw1", targets) == expect(targets, "connected")
    # sshd is for the admin network only, the gateway is not in it.
    ssh_port = [(db.address, 22)]
    assert probe(deployed.lab, "gw1", ssh_port) == expect(ssh_port, "TimeoutError")


def test_redis_answers_the_gateway_only(deployed: FirewallLab) -> None:
    lab = deployed.lab
    cache = lab.hosts["cache1"]
    redis = [(cache.address, 6379)]
    # Nothing listens there (Redis is not deployed here): an admitted
    # connection is refused by the host, a dropped one times out.
    assert probe(lab, "gw1", redis) == expect(redis, "ConnectionRefusedError")
    assert probe(lab, "client1", redis) == expect(redis, "TimeoutError")
    assert probe_here(redis) == expect(redis, "TimeoutError")


def test_the_control_machine_reaches_ssh_and_postgresql(deployed: FirewallLab) -> None:
    hosts = deployed.lab.hosts
    targets = [(hosts[name].address, 22) for name in sorted(hosts)]
    targets += [(hosts["db1"].address, 5432), (hosts["db1"].address6, 22)]
    assert probe_here(targets) == expect(targets, "connected")


def test_the_rules_survive_a_service_restart_and_a_boot_time_load(
    deployed: FirewallLab,
) -> None:
    lab = deployed.lab
    recorded = ssh(lab, "db1", f"cat {STATE_FILE}").strip()
    assert ssh(lab, "db1", "systemctl is-enabled nftables").strip() == "enabled"
    conf = ssh(lab, "db1", "cat /etc/nftables.conf")
    # Debian's own file is kept; the include comes after its flush ruleset.
    assert conf.index("flush ruleset") < conf.index(f'include "{RULES_FILE}"')
    assert "table inet filter" in conf

    ssh(lab, "db1", "systemctl restart nftables")
    assert ssh(lab, "db1", DIGEST).strip() == recorded
    tables = ssh(lab, "db1", "nft list tables").split("\n")
    assert {"table inet filter", "table inet pgfortress"} <= set(tables)

    # Stopping flushes every rule; starting loads /etc/nftables.conf as a boot does.
    ssh(lab, "db1", "systemctl stop nftables")
    assert ssh(lab, "db1", "nft list tables").strip() == ""
    ssh(lab, "db1", "systemctl start nftables")
    assert ssh(lab, "db1", DIGEST).strip() == recorded
    target = [(lab.hosts["db1"].address, 5432)]
    assert probe(lab, "client1", target) == expect(target, "TimeoutError")

    again = deployed.deploy("deploys/firewall.py")
    assert again.returncode == 0, again.output[-3000:]
    assert again.changed == []


def test_host_checks_pass_through_testinfra(deployed: FirewallLab) -> None:
    checks = run_host_checks(
        deployed.lab,
        sorted(deployed.lab.hosts),
        "tests/host/test_firewall.py",
        str(deployed.inventory()),
    )
    assert checks.returncode == 0, checks.output
    assert checks.summary.startswith("12 passed"), checks.summary


def _snapshot(lab: LabState, host: str) -> str:
    return ssh(lab, host, f"{DIGEST}; sha256sum {RULES_FILE}; cat /etc/nftables.conf")


def test_a_policy_that_locks_the_deploy_out_is_refused_before_any_change(
    deployed: FirewallLab,
) -> None:
    lab = deployed.lab
    before = {name: _snapshot(lab, name) for name in lab.hosts}
    run = deployed.deploy("deploys/firewall.py", "192.0.2.0/24")
    assert run.returncode != 0
    assert run.changed == []
    assert (
        f"the deploy connects from {lab.gateway}, which firewall_admin_networks "
        "(192.0.2.0/24) does not include"
    ) in run.output
    assert {name: _snapshot(lab, name) for name in lab.hosts} == before


def test_a_ruleset_nft_rejects_never_goes_live(deployed: FirewallLab) -> None:
    lab = deployed.lab
    before = _snapshot(lab, "db1")
    run = deployed.deploy("tests/lab/deploys/broken_firewall.py")
    assert run.returncode != 0
    assert "nft rejects the new ruleset" in run.output
    assert _snapshot(lab, "db1") == before
    rejected = ssh(lab, "db1", f"cat {RULES_FILE}.pgf-rejected")
    assert "tcp dport 22 acept" in rejected
    assert ssh_run(lab, "db1", f"test -e {RULES_FILE}.pgf-candidate").returncode == 1
    # The next normal run finds everything as wanted.
    again = deployed.deploy("deploys/firewall.py")
    assert again.returncode == 0, again.output[-3000:]
    assert again.changed == []


def test_a_firewall_nobody_confirms_rolls_back_by_itself(deployed: FirewallLab) -> None:
    lab = deployed.lab
    host = lab.hosts["client1"]
    before = _snapshot(lab, "client1")
    # A ruleset that shuts the control machine out, loaded as the deploy would,
    # but never confirmed: the deploy "lost" the host.
    spec = firewall_from_host_data(
        "client1", {"firewall_admin_networks": ["192.0.2.0/24"]}
    )
    ssh(
        lab, "client1", f"cat > {RULES_FILE}.pgf-candidate", stdin=render_nftables(spec)
    )
    script = firewall_script("client1", "load", 15)
    loaded = ssh(lab, "client1", "sh -s", stdin=script)
    assert "rolls back in 15 s unless confirmed" in loaded
    sshd = [(host.address, 22)]
    assert probe_here(sshd) == expect(sshd, "TimeoutError")
    deadline = time.monotonic() + 45
    while probe_here(sshd) != expect(sshd, "connected"):
        assert time.monotonic() < deadline, "the firewall was not rolled back"
        time.sleep(2)
    assert _snapshot(lab, "client1") == before
    assert "192.0.2.0/24" in ssh(lab, "client1", f"cat {RULES_FILE}.pgf-rejected")
