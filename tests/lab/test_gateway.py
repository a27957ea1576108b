"""The gateway against a real database on a lab host, over TLS both ways.

The database side is the real thing: db1 hardened by deploys/site.py with the
roles of specs/lab.yml, tables created by the migrator. The gateway runs here,
as its own process under uvicorn on loopback, the way it runs on a gateway
host; it logs in as the authenticator with verify-full against the lab CA.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState

from ._api import migrate
from .conftest import lab_name, run_deploy

pytestmark = pytest.mark.lab

LAB_NAME = lab_name("gw")
SECRET = "lab-only-hs256-secret-of-at-least-32-bytes!"


@dataclass(frozen=True)
class Gateway:
    lab: LabState
    url: str
    ca_file: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        trust = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(
            base_url=self.url, verify=trust, headers=headers, timeout=10
        )


def token(role: str = "web_user", **claims: Any) -> str:
    payload = {"role": role, "sub": "tester", "exp": int(time.time()) + 600} | claims
    return jwt.encode(payload, SECRET, algorithm="HS256")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(state: LabState, port: int, workdir: Path) -> Path:
    ca = tls.load_ca(state.dir / "ca")
    issued = tls.issue_server_certificate(
        ca, common_name="localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"]
    )
    (workdir / "server.crt").write_bytes(issued.chain_pem)
    key = workdir / "server.key"
    key.write_text(issued.key_pem.reveal())
    key.chmod(0o600)
    secret = workdir / "jwt.secret"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    password = workdir / "authenticator.password"
    password.write_text(
        (state.dir / "secrets" / "db1" / "authenticator").read_text().strip()
    )
    password.chmod(0o600)
    config = workdir / "gateway.toml"
    config.write_text(
        GATEWAY_TOML.format(
            db=state.hosts["db1"].address,
            ca=state.dir / "ca" / "ca.crt",
            password=password,
            secret=secret,
            port=port,
            metrics=_free_port(),
            cert=workdir / "server.crt",
            key=key,
        )
    )
    return config


GATEWAY_TOML = """
[database]
host = "{db}"
dbname = "app"
user = "authenticator"
password_file = "{password}"
sslrootcert = "{ca}"

[api]
schema = "api"
anonymous_role = "web_anon"
allowed_roles = ["web_anon", "web_user"]

[jwt]
secret_file = "{secret}"

[cors]
allowed_origins = ["https://app.example.test"]

[limits]
per_subject = "1000/minute"
per_address = "2000/minute"

[server]
listen_host = "127.0.0.1"
listen_port = {port}
tls_cert_file = "{cert}"
tls_key_file = "{key}"
metrics_port = {metrics}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    state = labs.up(LAB_NAME, ["db1"])
    process: subprocess.Popen[str] | None = None
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB_NAME} CA")
        run = run_deploy(state, "deploys/site.py")
        assert run.returncode == 0, run.output[-4000:]
        migrate(state)
        workdir = tmp_path_factory.mktemp("gateway")
        port = _free_port()
        config = _config(state, port, workdir)
        with (workdir / "gateway.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "pgfortress_gateway", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
        url = f"https://127.0.0.1:{port}"
        ready = Gateway(state, url, state.dir / "ca" / "ca.crt")
        _wait_until_serving(ready, process, workdir / "gateway.log")
        yield ready
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        labs.down(LAB_NAME)


def _wait_until_serving(
    gateway: Gateway, process: subprocess.Popen[str], log: Path
) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gateway exited:\n{log.read_text()[-3000:]}")
        try:
            with gateway.client() as client:
                client.get("/")
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        return
    raise AssertionError(f"gateway did not answer:\n{log.read_text()[-3000:]}")


def test_a_token_reads_a_table_through_https(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get("/customers", params={"order": "id.asc"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]


def test_filters_select_order_and_limit(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get(
            "/orders",
            params={
                "select": "id,total",
                "total": "gt.8",
                "order": "total.desc",
                "limit": "1",
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"id": 11, "total": 20}]


def test_embedding_along_a_foreign_key(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.get(
            "/customers",
            params={"select": "name,orders(id)", "id": "eq.1"},
        )
    assert answer.status_code == 200, answer.text
    (ada,) = answer.json()
    assert ada["name"] == "Ada"
    assert sorted(order["id"] for order in ada["orders"]) == [10, 11]


def test_insert_update_delete_with_representation(gateway: Gateway) -> None:
    prefer = {"Prefer": "return=representation"}
    with gateway.client(token()) as client:
        created = client.post(
            "/customers", json={"id": 3, "name": "Edsger"}, headers=prefer
        )
        assert created.status_code == 201, created.text
        assert created.json() == [{"id": 3, "name": "Edsger"}]
        changed = client.patch(
            "/customers", params={"id": "eq.3"}, json={"name": "E. W."}, headers=prefer
        )
        assert changed.status_code == 200, changed.text
        assert changed.json() == [{"id": 3, "name": "E. W."}]
        removed = client.delete("/customers", params={"id": "eq.3"})
        assert removed.status_code in {200, 204}, removed.text


def test_rpc(gateway: Gateway) -> None:
    with gateway.client(token()) as client:
        answer = client.post("/rpc/add", json={"a": 2, "b": 40})
    assert answer.status_code == 200, answer.text
    assert answer.json() == 42


def test_anonymous_may_read_but_not_write(gateway: Gateway) -> None:
    with gateway.client() as client:
        read = client.get("/customers")
        write = client.post("/customers", json={"id": 9, "name": "Mallory"})
    assert read.status_code == 200, read.text
    assert write.status_code in {401, 403}, write.text


@pytest.mark.parametrize(
    "bad_token",
    [
        jwt.encode(
            {"role": "web_user"}, "another-secret-of-at-least-32-bytes!!", "HS256"
        ),
        jwt.encode({"role": "web_user", "exp": 1}, SECRET, "HS256"),
        token(role="app_owner"),
        "not.a.token",
    ],
    ids=["forged", "expired", "role-not-granted", "malformed"],
)
def test_bad_tokens_are_refused(gateway: Gateway, bad_token: str) -> None:
    with gateway.client(bad_token) as client:
        answer = client.get("/customers")
    assert answer.status_code in {401, 403}, answer.text
    body = answer.json()
    assert set(body) >= {"code", "message"}
    assert bad_token not in answer.text


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/nope", {}, 404),
        ("/customers", {"select": "id,secret"}, 400),
        ("/customers", {"id": "zz.1"}, 400),
        ("/customers", {"id": "eq.1;DROP TABLE api.customers"}, 400),
        ("/customers", {"order": "name;--"}, 400),
        ("/customers", {"limit": "-1"}, 400),
        ("/customers", {"id": "is.true"}, 400),
        ("/customers", {"select": "\x00:id"}, 400),
    ],
)
def test_bad_requests_get_clear_json_errors(
    gateway: Gateway, path: str, params: dict[str, str], status: int
) -> None:
    with gateway.client(token()) as client:
        answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) >= {"code", "message"}
    assert "SELECT" not in answer.text
    with gateway.client(token()) as client:
        still = client.get("/customers")
    assert still.status_code == 200


def test_openapi_description(gateway: Gateway) -> None:
    with gateway.client() as client:
        answer = client.get("/")
    assert answer.status_code == 200
    document = json.loads(answer.text)
    assert "/customers" in document["paths"]
    assert "/rpc/add" in document["paths"]


def test_a_deeply_nested_body_is_a_clear_400(gateway: Gateway) -> None:
    body = "[" * 1000 + "]" * 1000
    with gateway.client(token()) as client:
        answer = client.post(
            "/rpc/add", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "PGF400"
