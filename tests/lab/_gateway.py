"""The gateway running here against db1 of a lab, for the tests that call it.

The database side is the real thing: db1 hardened by deploys/site.py with the
roles of specs/lab.yml, tables created by the migrator. The gateway runs here,
as its own process under uvicorn on loopback, the way it runs on a gateway
host; it logs in as the authenticator with verify-full against the lab CA.
One served gateway per platform (db1 on Debian 12 with PostgreSQL 15, on
Debian 13 with PostgreSQL 17) is shared by the modules that call it
(test_gateway.py and test_gateway_clients.py, through the ``served_gateway``
fixture of conftest.py): it is set up for the first of them and taken down
after the last, so each platform's lab and deploy happen once per run. Their
tests leave the tables as they found them (each writes and removes rows of
its own ids), so either module may run first.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from pgfortress.lab.platforms import DEFAULT_PLATFORM

from ._api import migrate
from .conftest import lab_name, run_deploy

__all__ = ["LAB_NAMES", "SECRET", "Gateway", "GatewayPool", "serve_gateway", "token"]

# The served gateway's lab on each platform.
LAB_NAMES = {"debian12": lab_name("gw"), "debian13": lab_name("gw13")}

SECRET = "lab-only-hs256-secret-of-at-least-32-bytes!"


@dataclass(frozen=True)
class Gateway:
    lab: LabState
    url: str
    ca_file: Path

    def trust(self) -> ssl.SSLContext:
        """A TLS context that trusts the lab CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.url, verify=self.trust(), headers=headers, timeout=10
        )


def token(role: str = "web_user", **claims: Any) -> str:
    payload = {"role": role, "sub": "tester", "exp": int(time.time()) + 600} | claims
    return jwt.encode(payload, SECRET, algorithm="HS256")


@contextlib.contextmanager
def serve_gateway(
    lab_name: str, workdir: Path, platform: str = DEFAULT_PLATFORM
) -> Iterator[Gateway]:
    """Bring up lab ``lab_name`` with db1 (on ``platform``) and the API app,
    serve the gateway from here until the block ends, then stop it and take
    the lab down."""
    state = labs.up(lab_name, ["db1"], platform=platform)
    process: subprocess.Popen[str] | None = None
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {lab_name} CA")
        run = run_deploy(state, "deploys/site.py")
        assert run.returncode == 0, run.output[-4000:]
        migrate(state)
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
        labs.down(lab_name)


class GatewayPool:
    """Served gateways by platform, each kept up while modules still need it.

    ``users`` counts, per platform, the test modules of this run that will
    lease it; the gateway and its lab go down when the last lease ends (or
    when the pool closes, whatever is still up)."""

    def __init__(self, users: Counter[str], workdir: Callable[[str], Path]) -> None:
        self._users = users
        self._workdir = workdir
        self._open: dict[str, tuple[contextlib.ExitStack, Gateway]] = {}

    @contextlib.contextmanager
    def lease(self, platform: str) -> Iterator[Gateway]:
        try:
            if platform not in self._open:
                stack = contextlib.ExitStack()
                with stack:
                    served = stack.enter_context(
                        serve_gateway(
                            LAB_NAMES[platform], self._workdir(platform), platform
                        )
                    )
                    self._open[platform] = (stack.pop_all(), served)
            yield self._open[platform][1]
        finally:
            self._users[platform] -= 1
            if self._users[platform] <= 0 and platform in self._open:
                self._open.pop(platform)[0].close()

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1][0].close()


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
