"""Two gateways share their rate-limit counters through a Redis on the lab.

db1 (deploys/site.py), cache1 (deploys/redis.py), gw1 and gw2
(deploys/gateway.py) with a per-subject limit of 5 a minute: a subject that
used its 5 requests on gw1 is refused on gw2, while another subject is not.
"""

from __future__ import annotations

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

LAB_NAME = lab_name("gwr")


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[LabState, list[DeployRun]]]:
    state = labs.up(LAB_NAME, ["db1", "gw1", "gw2", "cache1"])
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB_NAME} CA")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PGFORTRESS_LAB_RATE", "5/minute")
            runs = [run_deploy(state, "deploys/site.py")]
            migrate(state)
            for deploy in ("deploys/redis.py", "deploys/gateway.py") * 2:
                runs.append(run_deploy(state, deploy))
        for run in runs:
            assert run.returncode == 0, run.output[-4000:]
        yield state, runs
    finally:
        labs.down(LAB_NAME)


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
