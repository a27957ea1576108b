"""End to end: deploys/gateway.py installs the gateway on gw1 as a sandboxed service.

db1 gets deploys/site.py and the small API application; gw1 gets the gateway
from a wheelhouse built here (no package index on the host); client1 calls it
through the lab network over HTTPS. The deploy runs twice; the second run
changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import pytest

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState

from ._api import migrate
from .conftest import DeployRun, lab_name, run_deploy, ssh, ssh_run

pytestmark = pytest.mark.lab

LAB_NAME = lab_name("gwd")
UNIT = "pgfortress-gateway"


@dataclass(frozen=True)
class Deployed:
    lab: LabState
    runs: tuple[DeployRun, DeployRun]

    @property
    def url(self) -> str:
        return f"https://{self.lab.hosts['gw1'].address}:8443"

    def token(self, role: str = "web_user", secret: str | None = None) -> str:
        key = secret or (self.lab.dir / "secrets/gateway/jwt-secret").read_text()
        claims = {"role": role, "sub": "tester", "exp": int(time.time()) + 300}
        return jwt.encode(claims, key.strip(), algorithm="HS256")


@pytest.fixture(scope="module")
def deployed() -> Iterator[Deployed]:
    state = labs.up(LAB_NAME, ["db1", "gw1", "client1"])
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB_NAME} CA")
        site = run_deploy(state, "deploys/site.py")
        assert site.returncode == 0, site.output[-4000:]
        migrate(state)
        first = run_deploy(state, "deploys/gateway.py")
        assert first.returncode == 0, first.output[-4000:]
        second = run_deploy(state, "deploys/gateway.py")
        assert second.returncode == 0, second.output[-4000:]
        ca = (state.dir / "ca" / "ca.crt").read_text()
        ssh(state, "client1", "cat > /root/lab-ca.crt", stdin=ca)
        yield Deployed(state, (first, second))
    finally:
        labs.down(LAB_NAME)


CALL = """
import json, ssl, sys, urllib.error, urllib.request
url, token, method, body = {url!r}, {token!r}, {method!r}, {body!r}
request = urllib.request.Request(url, method=method, data=body and body.encode())
if token:
    request.add_header("Authorization", "Bearer " + token)
if body:
    request.add_header("Content-Type", "application/json")
context = ssl.create_default_context(cafile="/root/lab-ca.crt")
try:
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        print(json.dumps([answer.status, answer.read().decode()]))
except urllib.error.HTTPError as error:
    print(json.dumps([error.code, error.read().decode()]))
"""


def call_from_client(
    deployed: Deployed,
    path: str,
    token: str | None,
    method: str = "GET",
    body: str | None = None,
) -> tuple[int, str]:
    """An HTTPS call from client1; the token travels on stdin, not argv."""
    script = CALL.format(url=deployed.url + path, token=token, method=method, body=body)
    result = ssh_run(deployed.lab, "client1", "python3 -", stdin=script)
    assert result.returncode == 0, result.stderr
    status, text = json.loads(result.stdout)
    return int(status), str(text)


def test_second_deploy_changes_nothing(deployed: Deployed) -> None:
    first, second = deployed.runs
    assert first.changed
    assert second.changed == [], "\n".join(second.changed)


def test_a_client_reads_through_the_network_with_a_token(deployed: Deployed) -> None:
    status, text = call_from_client(deployed, "/customers?order=id", deployed.token())
    assert status == 200, text
    assert [row["name"] for row in json.loads(text)] == ["Ada", "Grace"]


def test_writes_need_a_valid_token(deployed: Deployed) -> None:
    body = json.dumps({"id": 5, "name": "Barbara"})
    forged = deployed.token(secret="a-forged-secret-that-is-32-bytes-long!")
    status, text = call_from_client(deployed, "/customers", forged, "POST", body)
    assert status == 401, text
    status, text = call_from_client(deployed, "/customers", None, "POST", body)
    assert status in {401, 403}, text
    status, text = call_from_client(
        deployed, "/customers", deployed.token(), "POST", body
    )
    assert status == 201, text


def test_the_service_runs_sandboxed(deployed: Deployed) -> None:
    lab = deployed.lab
    assert ssh(lab, "gw1", f"systemctl is-active {UNIT}").strip() == "active"
    assert ssh(lab, "gw1", f"systemctl is-enabled {UNIT}").strip() == "enabled"
    status = ssh(
        lab,
        "gw1",
        f"cat /proc/$(systemctl show -p MainPID --value {UNIT})/status",
    )
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == "0000000000000000"
    assert fields["CapPrm"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    owner = ssh(
        lab, "gw1", f"ps -o user= -p $(systemctl show -p MainPID --value {UNIT})"
    )
    assert owner.strip() == "pgfortress-gw"
    exposure = ssh(lab, "gw1", f"systemd-analyze security {UNIT} --no-pager | tail -1")
    score = float(exposure.split("level for")[1].split(":")[1].split()[0])
    assert score <= 2.0, exposure


def test_the_sandbox_refuses_writes_outside_its_state_directory(
    deployed: Deployed,
) -> None:
    # Enter the running service's own mount namespace as its user: what that
    # shell may write is what the service may write.
    probe = (
        f"P=$(systemctl show -p MainPID --value {UNIT}); "
        "U=$(id -u pgfortress-gw); G=$(id -g pgfortress-gw); "
        "nsenter -t $P -m -S $U -G $G sh -c '"
        "touch /var/lib/pgfortress-gateway/probe && echo state-writable; "
        "touch /etc/probe 2>&1; touch /opt/pgfortress-gateway/probe 2>&1; "
        "touch /tmp/probe && echo tmp-writable'; "
        "test -e /tmp/probe || echo tmp-is-private"
    )
    out = ssh(deployed.lab, "gw1", probe)
    assert "state-writable" in out
    assert "cannot touch '/etc/probe': Read-only file system" in out
    assert "cannot touch '/opt/pgfortress-gateway/probe': Read-only file system" in out
    assert "tmp-writable" in out
    assert "tmp-is-private" in out


def test_secrets_are_readable_only_by_root_and_the_service(deployed: Deployed) -> None:
    listing = ssh(
        deployed.lab,
        "gw1",
        "stat -c '%n %a %U %G' /etc/pgfortress-gateway/db-password "
        "/etc/pgfortress-gateway/jwt-secret /etc/pgfortress-gateway/tls.key "
        "/etc/pgfortress-gateway/gateway.toml",
    )
    for line in listing.splitlines():
        _, mode, user, group = line.split()
        assert (mode, user, group) == ("640", "root", "pgfortress-gw"), line


def test_it_listens_only_on_its_address(deployed: Deployed) -> None:
    sockets = ssh(deployed.lab, "gw1", "ss -H -ltn")
    public = [line.split()[3] for line in sockets.splitlines() if ":8443" in line]
    assert public == [f"{deployed.lab.hosts['gw1'].address}:8443"]


def test_metrics_and_health_answer_only_on_loopback(deployed: Deployed) -> None:
    lab = deployed.lab
    fetch = (
        "python3 -c 'import sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "
    )
    health = ssh(lab, "gw1", fetch + "http://127.0.0.1:9187/health")
    assert json.loads(health) == {"database": "ok"}
    metrics = ssh(lab, "gw1", fetch + "http://127.0.0.1:9187/metrics")
    assert "pgfortress_gateway_requests_total{" in metrics
    assert "pgfortress_gateway_request_seconds_count" in metrics
    listeners = ssh(lab, "gw1", "ss -H -ltn")
    metrics_sockets = [
        line.split()[3] for line in listeners.splitlines() if ":9187" in line
    ]
    assert metrics_sockets == ["127.0.0.1:9187"]
