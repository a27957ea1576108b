"""End to end: deploys/gateway.py installs the gateway on gw1 as a sandboxed service.

db1 gets deploys/site.py and the small API application; gw1 gets the gateway
from a wheelhouse built here (no package index on the host); client1 calls it
through the lab network over HTTPS. The deploy runs twice; the second run
changes nothing. outside1 belongs to no inventory group: it is the lab address
that the service's address filter must keep out. All of it runs on Debian 12
and on Debian 13, whose Python (3.13) gets its own wheels.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState

from ._api import migrate
from .conftest import DeployRun, lab_name, run_deploy, run_host_checks, ssh, ssh_run

pytestmark = pytest.mark.lab

# Debian 12 (Python 3.11) and Debian 13 (Python 3.13), one lab after the other.
LAB_NAMES = {"debian12": lab_name("gwd"), "debian13": lab_name("gwd13")}
UNIT = "pgfortress-gateway"
GATEWAY_CHECKS = 6


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


def clients_only(state: LabState) -> list[str]:
    """pyinfra arguments that make client1 the gateway's only client network.

    The lab inventory names the whole lab subnet, so every lab host would pass
    the address filter and nothing could show that it keeps anyone out.
    pyinfra's ``--data`` overrides that with client1 alone; db1 is on the
    list only because the role adds the database host.
    """
    client = state.hosts["client1"]
    networks = [f"{client.address}/32", f"{client.address6}/128"]
    return ["--data", f"gateway_allowed_networks={json.dumps(networks)}"]


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def deployed(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    platform, name = request.param, LAB_NAMES[request.param]
    state = labs.up(name, ["db1", "gw1", "client1", "outside1"], platform=platform)
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {name} CA")
        site = run_deploy(state, "deploys/site.py")
        assert site.returncode == 0, site.output[-4000:]
        migrate(state)
        narrowed = clients_only(state)
        first = run_deploy(state, "deploys/gateway.py", extra=narrowed)
        assert first.returncode == 0, first.output[-4000:]
        second = run_deploy(state, "deploys/gateway.py", extra=narrowed)
        assert second.returncode == 0, second.output[-4000:]
        ca = (state.dir / "ca" / "ca.crt").read_text()
        ssh(state, "client1", "cat > /root/lab-ca.crt", stdin=ca)
        yield Deployed(state, (first, second))
    finally:
        labs.down(name)


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
        print(json.dumps([answer.status, answer.read().decode(), None]))
except urllib.error.HTTPError as error:
    wait = error.headers.get("Retry-After")
    print(json.dumps([error.code, error.read().decode(), wait]))
"""


def call_from_client(
    deployed: Deployed,
    path: str,
    token: str | None,
    method: str = "GET",
    body: str | None = None,
) -> tuple[int, str]:
    """An HTTPS call from client1; the token travels on stdin, not argv."""
    status, text, _ = call_with_retry_after(deployed, path, token, method, body)
    return status, text


def call_with_retry_after(
    deployed: Deployed,
    path: str,
    token: str | None,
    method: str = "GET",
    body: str | None = None,
) -> tuple[int, str, str | None]:
    """:func:`call_from_client`, with the answer's Retry-After header."""
    script = CALL.format(url=deployed.url + path, token=token, method=method, body=body)
    result = ssh_run(deployed.lab, "client1", "python3 -", stdin=script)
    assert result.returncode == 0, result.stderr
    status, text, wait = json.loads(result.stdout)
    return int(status), str(text), wait


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


def test_the_gateway_host_checks_pass(deployed: Deployed) -> None:
    # tests/host/test_gateway.py: the service, its user and privileges, the
    # sandbox's exposure, the secrets' modes, the listeners and the address
    # filter; `pgfortress image verify` holds a gateway image to them too.
    checks = run_host_checks(deployed.lab, ["gw1"], "tests/host/test_gateway.py")
    assert checks.returncode == 0, checks.output
    assert checks.summary.startswith(f"{GATEWAY_CHECKS} passed"), checks.output


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


# Tries TCP connections to each (host, port) of argv[1] and tells which cgroup
# and user it ran in. A dropped packet shows as a timeout, not as a refusal.
CONNECT = """
import json, os, socket, sys
cgroup = [line for line in open("/proc/self/cgroup") if line.startswith("0::")]
results = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        results[f"{host} {port}"] = "connected"
    except OSError as error:
        results[f"{host} {port}"] = type(error).__name__
print(json.dumps([os.getuid(), cgroup[0][3:].strip(), results]))
"""
LISTENER_PORT = 8080


def connect(
    lab: LabState, host: str, targets: list[tuple[str, int]], prefix: str = "exec "
) -> tuple[int, str, dict[str, str]]:
    """Run CONNECT on ``host``; ``prefix`` is the shell text before python3."""
    argument = shlex.quote(json.dumps(targets))
    out = ssh(lab, host, f"{prefix}python3 - {argument}", stdin=CONNECT)
    uid, cgroup, results = json.loads(out)
    return int(uid), str(cgroup), dict(results)


def connect_as_the_service(
    lab: LabState, targets: list[tuple[str, int]], in_its_cgroup: bool
) -> tuple[int, str, dict[str, str]]:
    """Connect from gw1 as the service's user, in its mount namespace.

    With ``in_its_cgroup`` the shell first moves itself into the unit's
    cgroup, where systemd attached the address filter; without, the same
    connections are the control.
    """
    prefix = f"P=$(systemctl show -p MainPID --value {UNIT}); "
    if in_its_cgroup:
        prefix += (
            f"CG=$(systemctl show -p ControlGroup --value {UNIT}); "
            'echo $$ > "/sys/fs/cgroup$CG/cgroup.procs" && '
        )
    user = "-S $(id -u pgfortress-gw) -G $(id -g pgfortress-gw)"
    prefix += f"exec nsenter -t $P -m {user} "
    return connect(lab, "gw1", targets, prefix)


@contextmanager
def listening(lab: LabState, host: str) -> Iterator[list[tuple[str, int]]]:
    """Plain HTTP servers on both lab addresses of ``host``, ended by pid."""
    node = lab.hosts[host]
    targets = [(node.address, LISTENER_PORT), (node.address6, LISTENER_PORT)]
    pids: list[str] = []
    try:
        for address, port in targets:
            start = (
                f"nohup python3 -m http.server --bind {address} {port} "
                ">/dev/null 2>&1 </dev/null & echo $!"
            )
            pids.append(ssh(lab, host, start).strip())
        for _ in range(50):
            if set(connect(lab, host, targets)[2].values()) == {"connected"}:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no listener on {host}:{LISTENER_PORT}")
        yield targets
    finally:
        if pids:
            ssh(lab, host, "kill " + " ".join(pids))


def test_the_address_filter_lets_in_loopback_the_client_and_the_database(
    deployed: Deployed,
) -> None:
    lab = deployed.lab
    client, db = lab.hosts["client1"], lab.hosts["db1"]
    allowed = ssh(lab, "gw1", f"systemctl show -p IPAddressAllow --value {UNIT}")
    assert set(allowed.split()) == {
        "127.0.0.0/8",
        "::1/128",
        f"{client.address}/32",
        f"{client.address6}/128",
        f"{db.address}/32",
    }
    denied = ssh(lab, "gw1", f"systemctl show -p IPAddressDeny --value {UNIT}")
    assert set(denied.split()) == {"0.0.0.0/0", "::/0"}


def test_the_service_reaches_the_database_and_no_other_lab_host(
    deployed: Deployed,
) -> None:
    lab = deployed.lab
    database = (lab.hosts["db1"].address, 5432)
    with listening(lab, "outside1") as outside:
        uid, cgroup, inside = connect_as_the_service(
            lab, [database, *outside], in_its_cgroup=True
        )
        _, control_cgroup, control = connect_as_the_service(
            lab, outside, in_its_cgroup=False
        )
    assert uid == int(ssh(lab, "gw1", "id -u pgfortress-gw"))
    unit_cgroup = ssh(lab, "gw1", f"systemctl show -p ControlGroup --value {UNIT}")
    assert cgroup == unit_cgroup.strip()
    assert control_cgroup != cgroup
    expected = {f"{database[0]} 5432": "connected"}
    expected |= {f"{host} {port}": "TimeoutError" for host, port in outside}
    assert inside == expected
    # The same connections from outside the unit's cgroup get through: the
    # listeners were there, only the filter kept the service away from them.
    assert set(control.values()) == {"connected"}, control


def test_hosts_outside_the_client_networks_cannot_reach_the_gateway(
    deployed: Deployed,
) -> None:
    lab = deployed.lab
    gw = lab.hosts["gw1"]
    https, sshd = (gw.address, 8443), (gw.address, 22)
    # gw1's sshd runs outside the unit: it answers outside1, the gateway not.
    _, _, outside = connect(lab, "outside1", [https, sshd])
    assert outside == {
        f"{gw.address} 8443": "TimeoutError",
        f"{gw.address} 22": "connected",
    }
    _, _, client = connect(lab, "client1", [https])
    assert client == {f"{gw.address} 8443": "connected"}


def gateway_process(deployed: Deployed) -> str:
    """The service's main process id and restart count, to tell a restart."""
    return ssh(
        deployed.lab, "gw1", f"systemctl show -p MainPID -p NRestarts --value {UNIT}"
    )


def test_503_while_the_database_is_down_and_recovery_without_a_restart(
    deployed: Deployed,
) -> None:
    before = gateway_process(deployed)
    path, token = "/customers?id=eq.1", deployed.token()
    assert call_from_client(deployed, path, token)[0] == 200
    ssh(deployed.lab, "db1", "systemctl stop postgresql")
    try:
        status, text, wait = call_with_retry_after(deployed, path, token)
        assert status == 503, text
        assert json.loads(text)["code"] == "PGF503", text
        assert wait is not None
        assert int(wait) > 0
        # Nothing of libpq's or the server's own words reaches the client.
        database = deployed.lab.hosts["db1"]
        for leak in ("5432", database.address, "psycopg", "FATAL", "Traceback"):
            assert leak not in text, text
    finally:
        ssh(deployed.lab, "db1", "systemctl start postgresql")
    deadline = time.monotonic() + 90
    status = 0
    while time.monotonic() < deadline:
        status, text = call_from_client(deployed, path, token)
        if status == 200:
            break
        assert status == 503, text
        time.sleep(2)
    assert status == 200, "the gateway did not recover once the database was back"
    assert json.loads(text)[0]["name"] == "Ada"
    assert gateway_process(deployed) == before, "the gateway was restarted"


def test_tokens_from_an_identity_provider_key_replace_the_secret(
    deployed: Deployed, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Last in the module: it redeploys the gateway with another key source.
    provider = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path_factory.mktemp("idp") / "idp.pub"
    public.write_bytes(
        provider.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    source = json.dumps({"public_key_file": str(public), "audience": "orders"})
    extra = [*clients_only(deployed.lab), "--data", f"gateway_jwt={source}"]
    runs = [run_deploy(deployed.lab, "deploys/gateway.py", extra=extra)]
    runs.append(run_deploy(deployed.lab, "deploys/gateway.py", extra=extra))
    assert all(run.returncode == 0 for run in runs), runs[0].output[-4000:]
    assert runs[1].changed == [], "\n".join(runs[1].changed)
    claims = {"role": "web_user", "sub": "idp-user", "exp": int(time.time()) + 300}
    signed = jwt.encode(claims | {"aud": "orders"}, provider, algorithm="ES256")
    other_audience = jwt.encode(claims | {"aud": "x"}, provider, algorithm="ES256")
    assert call_from_client(deployed, "/customers?id=eq.1", signed)[0] == 200
    assert call_from_client(deployed, "/customers", other_audience)[0] == 401
    # The HS256 secret the gateway trusted before no longer opens anything.
    assert call_from_client(deployed, "/customers", deployed.token())[0] == 401
    config = ssh(deployed.lab, "gw1", "cat /etc/pgfortress-gateway/gateway.toml")
    assert 'public_key_file = "/etc/pgfortress-gateway/jwt-public.pem"' in config
    assert "secret_file" not in config
    listing = ssh(deployed.lab, "gw1", "ls /etc/pgfortress-gateway").split()
    assert "jwt-public.pem" in listing
    assert "jwt-secret" not in listing
