"""The live state of the gateway service (roles/gateway.py) on the ``gw`` hosts.

What ``deploys/gateway.py`` promises on a gateway host, held to the inventory
(``--pgf-inventory``): the service runs, enabled, as its own user without
privileges; its sandbox; its secrets readable only by root and the service;
HTTPS only on the address it was given; health and metrics only on loopback;
an address filter that lets in nothing the inventory does not name.
``tests/lab/test_gateway_deploy.py`` runs these checks after a live deploy
and ``pgfortress image verify`` after a gateway image's follow-up deploy.

On a host outside the inventory's ``gw`` group (a database host, say) every
check asserts instead that no gateway runs or is enabled there and that no
gateway secret lies around, so that a run over every check of tests/host
skips none. No ``pytest.mark.control`` here: neither the CIS PostgreSQL Benchmark nor
dev-sec's postgres-baseline says anything about an HTTP API in front of the
database.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from pgfortress.plan.gateway import GatewayLayout, address_filter
from pgfortress.spec.gateway import GatewayHostSpec, gateway_from_host_data

LAYOUT = GatewayLayout()
UNIT = LAYOUT.service
# systemd-analyze security's exposure level; the unit scores about 1.0.
MAX_EXPOSURE = 2.0


@pytest.fixture
def gateway(host: Any, inventory: dict[str, dict[str, Any]]) -> GatewayHostSpec | None:
    """What the inventory asked of this gateway host; None outside ``gw``.

    Without an inventory, a host is held to having no gateway.
    """
    name = host.backend.get_hostname()
    data = inventory.get(name, {})
    if "gw" not in data.get("_groups", []):
        return None
    return gateway_from_host_data(name, data)


# One command, as every check runs it on each host outside the gw group.
ABSENCE = (
    f"echo active=$(systemctl is-active {UNIT}); "
    f"echo enabled=$(systemctl is-enabled {UNIT} 2>/dev/null); "
    f"echo files=$(ls -A {LAYOUT.etc} 2>/dev/null)"
)
SECRETS = {"tls.key", "db-password", "jwt-secret", "gateway.toml"}


def _no_gateway(host: Any) -> None:
    """A host the inventory gives no gateway runs none and keeps no secret of one."""
    lines = host.check_output(ABSENCE).splitlines()
    found = dict(line.partition("=")[::2] for line in lines)
    assert found["active"] != "active", f"{UNIT} runs outside the gw group"
    assert not found["enabled"].startswith("enabled"), f"{UNIT} is enabled there"
    left = sorted(SECRETS & set(found["files"].split()))
    assert left == [], f"gateway secrets outside the gw group: {left}"


def _main_pid(host: Any) -> str:
    pid = host.check_output(f"systemctl show -p MainPID --value {UNIT}").strip()
    assert pid not in {"", "0"}, f"{UNIT} has no main process"
    return str(pid)


def test_the_service_runs_enabled_as_its_user_without_privileges(
    host: Any, gateway: GatewayHostSpec | None
) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    service = host.service(UNIT)
    assert service.is_running, f"{UNIT} is not running"
    assert service.is_enabled, f"{UNIT} is not enabled"
    pid = _main_pid(host)
    status = host.file(f"/proc/{pid}/status").content_string
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == "0000000000000000"
    assert fields["CapPrm"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    owner = host.check_output(f"ps -o user= -p {pid}").strip()
    assert owner == LAYOUT.user


def test_the_sandbox_exposes_little(host: Any, gateway: GatewayHostSpec | None) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    last = host.check_output(f"systemd-analyze security {UNIT} --no-pager | tail -1")
    score = float(last.split("level for")[1].split(":")[1].split()[0])
    assert score <= MAX_EXPOSURE, last


def test_secrets_are_readable_only_by_root_and_the_service(
    host: Any, gateway: GatewayHostSpec | None
) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    directory = host.file(LAYOUT.etc)
    assert (directory.user, directory.group, directory.mode) == (
        "root",
        LAYOUT.user,
        0o750,
    )
    secrets = ["gateway.toml", "tls.key", "db-password"]
    if gateway.jwt.generated_secret:
        secrets.append("jwt-secret")
    for name in secrets:
        secret = host.file(LAYOUT.file(name))
        assert secret.is_file, f"{secret.path} is missing"
        found = (secret.user, secret.group, oct(secret.mode))
        assert found == ("root", LAYOUT.user, "0o640"), secret.path


def _listeners(host: Any, port: int) -> list[str]:
    sockets = host.check_output("ss -H -ltn")
    return sorted(
        line.split()[3]
        for line in sockets.splitlines()
        if line.split()[3].rsplit(":", 1)[1] == str(port)
    )


def test_https_listens_only_on_its_address(
    host: Any, gateway: GatewayHostSpec | None
) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    address = ipaddress.ip_address(gateway.listen)
    shown = f"[{address}]" if address.version == 6 else str(address)
    assert _listeners(host, gateway.port) == [f"{shown}:{gateway.port}"]


def test_health_and_metrics_answer_on_loopback_only(
    host: Any, gateway: GatewayHostSpec | None
) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    port = gateway.metrics_port
    fetch = (
        "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("
        "sys.argv[1], timeout=5).read().decode())' "
    )
    health = host.check_output(fetch + f"http://127.0.0.1:{port}/health")
    assert json.loads(health) == {"database": "ok"}
    metrics = host.check_output(fetch + f"http://127.0.0.1:{port}/metrics")
    assert "# TYPE pgfortress_gateway_requests_total counter" in metrics
    assert _listeners(host, port) == [f"127.0.0.1:{port}"]


def _networks(text: str) -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return {ipaddress.ip_network(word, strict=False) for word in text.split()}


def test_the_address_filter_lets_in_nothing_the_inventory_does_not_name(
    host: Any, gateway: GatewayHostSpec | None
) -> None:
    if gateway is None:
        _no_gateway(host)
        return
    show = f"systemctl show --value {UNIT} -p"
    denied = _networks(host.check_output(f"{show} IPAddressDeny"))
    allowed = _networks(host.check_output(f"{show} IPAddressAllow"))
    named = address_filter(gateway)
    if not named:
        assert denied == set(), "an address filter the inventory does not ask for"
        return
    assert denied == _networks("0.0.0.0/0 ::/0")
    loopback = _networks("127.0.0.0/8 ::1/128")
    unnamed = allowed - loopback - _networks(" ".join(named))
    assert unnamed == set(), f"allowed but not in the inventory: {unnamed}"
    assert allowed - loopback, "the filter lets in loopback alone"
