"""Two gateways share their rate-limit counters through a Redis on the lab.

db1 (deploys/site.py), cache1 (deploys/redis.py), gw1 and gw2
(deploys/gateway.py, two worker processes each) with a per-subject limit of
5 a minute: a subject that used its 5 requests on gw1 is refused on gw2, while
another subject is not. The workers of one gateway share the counters the
same way, and report to the one metrics listener of their gateway. All of it
runs on Debian 12 and on Debian 13 (each its own Redis and Python).
"""

from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState

from ._api import migrate
from .conftest import DeployRun, lab_name, run_deploy, ssh_run

pytestmark = pytest.mark.lab

# One lab per platform, one after the other (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("gwr"), "debian13": lab_name("gwr13")}
WORKERS = ["--data", "gateway_workers=2"]
UNIT = "pgfortress-gateway"


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def shared(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[LabState, list[DeployRun]]]:
    platform, name = request.param, LAB_NAMES[request.param]
    state = labs.up(name, ["db1", "gw1", "gw2", "cache1"], platform=platform)
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {name} CA")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PGFORTRESS_LAB_RATE", "5/minute")
            runs = [run_deploy(state, "deploys/site.py")]
            migrate(state)
            for deploy in ("deploys/redis.py", "deploys/gateway.py") * 2:
                runs.append(run_deploy(state, deploy, extra=WORKERS))
        for run in runs:
            assert run.returncode == 0, run.output[-4000:]
        yield state, runs
    finally:
        labs.down(name)


def _get(state: LabState, gateway: str, subject: str) -> int:
    secret = (state.dir / "secrets/gateway/jwt-secret").read_text().strip()
    claims = {"role": "web_user", "sub": subject, "exp": int(time.time()) + 300}
    token = jwt.encode(claims, secret, algorithm="HS256")
    trust = ssl.create_default_context(cafile=str(state.dir / "ca" / "ca.crt"))
    url = f"https://{state.hosts[gateway].address}:8443/customers"
    with httpx.Client(verify=trust, timeout=10) as client:
        answer = client.get(url, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


def test_second_runs_change_nothing(
    shared: tuple[LabState, list[DeployRun]],
) -> None:
    _, runs = shared
    for run in runs[-2:]:
        assert run.changed == [], "\n".join(run.changed)


def test_a_subject_limited_on_one_gateway_is_limited_on_the_other(
    shared: tuple[LabState, list[DeployRun]],
) -> None:
    state, _ = shared
    assert [_get(state, "gw1", "flooder") for _ in range(5)] == [200] * 5
    assert _get(state, "gw2", "flooder") == 429
    assert _get(state, "gw2", "bystander") == 200


def test_redis_refuses_clients_without_the_password(
    shared: tuple[LabState, list[DeployRun]],
) -> None:
    state, _ = shared
    address = state.hosts["cache1"].address
    result = ssh_run(state, "cache1", f"redis-cli -h {address} ping")
    assert "NOAUTH" in result.stdout + result.stderr


def _private(state: LabState, gateway: str, path: str) -> str:
    fetch = (
        "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen("
        "sys.argv[1], timeout=5).read().decode())' http://127.0.0.1:9187"
    )
    result = ssh_run(state, gateway, fetch + path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _served(metrics: str) -> int:
    found = re.search(
        r'^pgfortress_gateway_requests_total\{method="GET",status="200"\} (\d+)$',
        metrics,
        re.MULTILINE,
    )
    return int(found.group(1)) if found else 0


def _listeners(state: LabState, gateway: str) -> set[str]:
    sockets = ssh_run(state, gateway, "ss -H -ltnp 'sport = :8443'").stdout
    return set(re.findall(r"pid=(\d+)", sockets))


def test_two_workers_serve_and_report_to_one_listener(
    shared: tuple[LabState, list[DeployRun]],
) -> None:
    state, _ = shared
    procs = ssh_run(
        state,
        "gw1",
        f"cat /sys/fs/cgroup$(systemctl show -p ControlGroup --value {UNIT})"
        "/cgroup.procs",
    ).stdout.split()
    main = ssh_run(state, "gw1", f"systemctl show -p MainPID --value {UNIT}")
    workers = set(procs) - {main.stdout.strip()}
    assert len(procs) == 3, procs
    # Each worker holds its own listening socket on the API's port.
    assert _listeners(state, "gw1") == workers

    time.sleep(1.5)  # the workers report once a second
    before = _served(_private(state, "gw1", "/metrics"))
    assert [_get(state, "gw1", f"reader-{n}") for n in range(6)] == [200] * 6
    time.sleep(2.5)
    assert _served(_private(state, "gw1", "/metrics")) - before == 6
    health = json.loads(_private(state, "gw1", "/health"))
    assert health == {"database": "ok", "workers": "2 of 2"}


def test_a_worker_killed_brings_the_gateway_back_whole(
    shared: tuple[LabState, list[DeployRun]],
) -> None:
    state, _ = shared
    before = _listeners(state, "gw2")
    assert len(before) == 2
    victim = sorted(before)[0]
    assert ssh_run(state, "gw2", f"kill -9 {victim}").returncode == 0
    # The main process stops the other worker and exits; systemd restarts it.
    for _ in range(60):
        time.sleep(1)
        after = _listeners(state, "gw2")
        if len(after) == 2 and not after & before:
            break
    assert len(after) == 2, (before, after)
    assert not after & before, (before, after)
    for _ in range(20):
        if _get(state, "gw2", "after-restart") == 200:
            break
        time.sleep(0.5)
    assert _get(state, "gw2", "after-restart-2") == 200
