"""The attack suite's target: a hardened stack on a lab, attacked from outside.

One lab per run of the suite (db1, gw1, client1) gets what ``make demo``
deploys: deploys/site.py on db1, the API application, and deploys/gateway.py
on gw1, here with tokens from an identity provider's JWKS URL (served from
client1 over TLS), an audience and an issuer, so that every kind of forged
token has something to be checked against. Every host gets the nftables
firewall (deploys/site.py runs it first), with the control machine as the
admin network. Two departures from the demo, both on db1: ``log_statement =
all``, so the injection tests can read every statement the gateway sent, and
one pg_hba rule in front of the lab's policy that lets ``reporting`` in from
the control machine with a client certificate only, so that foreign
certificates have a rule to be refused by.

The attacks stand where an attacker would: on client1, a host of the client
network, and on the control machine, the admin network.
"""

from __future__ import annotations

import base64
import json
import os
import runpy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from tests.lab._api import migrate
from tests.lab.conftest import REPO, DeployRun, lab_name, run_deploy, ssh

from ._client import ClientHost

# The whole suite once per platform, one lab after the other.
LAB_NAMES = {"debian12": lab_name("atk"), "debian13": lab_name("atk13")}
AUDIENCE = "pgfortress-attack-suite"
ISSUER = "https://idp.attack.test"
KID = "attack-1"
JWKS_PORT = 8444
# Low enough that a flood reaches them within seconds, high enough that the
# corpus (spread over many subjects) and the other attacks never do.
LIMITS = {"per_subject": "150/minute", "per_address": "4000/minute"}
CORS_ORIGIN = "https://app.attack.test"


@dataclass(frozen=True)
class Target:
    """The deployed stack and the means to attack it."""

    lab: LabState
    signing_key: rsa.RSAPrivateKey
    gateway_runs: tuple[DeployRun, DeployRun]
    client: ClientHost

    @property
    def ca_file(self) -> Path:
        return self.lab.dir / "ca" / "ca.crt"

    @property
    def gateway_address(self) -> str:
        return self.lab.hosts["gw1"].address

    @property
    def gateway_url(self) -> str:
        return f"https://{self.gateway_address}:8443"

    @property
    def db_address(self) -> str:
        return self.lab.hosts["db1"].address

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "role": "web_user",
            "sub": "attacker",
            "aud": AUDIENCE,
            "iss": ISSUER,
            "iat": now,
            "exp": now + 600,
        } | overrides

    def token(self, **overrides: Any) -> str:
        """A token the gateway must accept, unless ``overrides`` spoil it."""
        return jwt.encode(
            self.claims(**overrides),
            self.signing_key,
            algorithm="RS256",
            headers={"kid": KID},
        )

    def public_pem(self) -> bytes:
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def db_log(self) -> str:
        """db1's PostgreSQL server log, as written so far."""
        return ssh(self.lab, "db1", "cat /var/log/postgresql/postgresql-*-main.log")


def jwks_document(key: rsa.RSAPublicKey) -> dict[str, Any]:
    numbers = key.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": KID,
                "use": "sig",
                "alg": "RS256",
                "n": b64(numbers.n),
                "e": b64(numbers.e),
            }
        ]
    }


JWKS_SERVER = """
import http.server, ssl, sys
document = open("/root/jwks/jwks.json", "rb").read()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/jwks.json":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(document)))
        self.end_headers()
        self.wfile.write(document)

server = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/root/jwks/server.crt", "/root/jwks/server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def _serve_jwks(state: LabState, key: rsa.RSAPrivateKey) -> str:
    """Run an identity provider's JWKS endpoint on client1; return its URL."""
    client = state.hosts["client1"]
    issued = tls.issue_server_certificate(
        tls.load_ca(state.dir / "ca"),
        common_name=client.address,
        dns_names=[],
        ip_addresses=[client.address],
    )
    ssh(state, "client1", "install -d -m 0700 /root/jwks")
    files = {
        "jwks.json": json.dumps(jwks_document(key.public_key())),
        "server.crt": issued.chain_pem.decode(),
        "server.key": issued.key_pem.reveal(),
        "serve.py": JWKS_SERVER,
    }
    for name, text in files.items():
        ssh(state, "client1", f"umask 077; cat > /root/jwks/{name}", stdin=text)
    ssh(
        state,
        "client1",
        "systemd-run --unit=attack-jwks --collect python3 /root/jwks/serve.py "
        f"{client.address} {JWKS_PORT}",
    )
    return f"https://{client.address}:{JWKS_PORT}/jwks.json"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError(
            "the attack suite boots systemd-nspawn hosts and needs root; run it "
            "with sudo (make test does) — it is never skipped"
        )


CERTIFICATE_USER = "reporting"


def _policy_with_client_certificates(state: LabState) -> list[dict[str, Any]]:
    """The lab inventory's pg_hba policy with a certificate-only rule first."""
    before = os.environ.get("PGFORTRESS_LAB")
    os.environ["PGFORTRESS_LAB"] = state.name
    try:
        inventory = runpy.run_path(str(REPO / "inventories" / "lab.py"))
    finally:
        if before is None:
            del os.environ["PGFORTRESS_LAB"]
        else:
            os.environ["PGFORTRESS_LAB"] = before
    rules: list[dict[str, Any]] = inventory["db"][1]["postgres_hba"]
    certificate_only = {
        "type": "hostssl",
        "databases": ["app"],
        "users": [CERTIFICATE_USER],
        "address": f"{state.gateway}/32",
        "method": "cert",
        "options": {"clientcert": "verify-full"},
        "comment": "attack suite: reporting needs a certificate from the lab CA",
    }
    return [certificate_only, *rules]


@pytest.fixture(scope="package", params=list(LAB_NAMES))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    platform, name = request.param, LAB_NAMES[request.param]
    state = labs.up(name, ["db1", "gw1", "client1"], platform=platform)
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {name} CA")
        policy = json.dumps(_policy_with_client_certificates(state))
        admin = [f"{state.gateway}/32", f"{state.gateway6}/128"]
        # The identity provider on client1 answers gw1 only (pyinfra's --data
        # sets it on every host; nothing else listens on that port).
        provider = [
            {
                "port": JWKS_PORT,
                "networks": [f"{state.hosts['gw1'].address}/32"],
                "comment": "the attack suite's identity provider (JWKS)",
            }
        ]
        site = run_deploy(
            state,
            "deploys/site.py",
            extra=[
                *("--data", 'postgres_logging={"statement": "all"}'),
                *("--data", f"postgres_hba={policy}"),
                *("--data", f"firewall_admin_networks={json.dumps(admin)}"),
                *("--data", f"firewall_allow={json.dumps(provider)}"),
            ],
        )
        assert site.returncode == 0, site.output[-4000:]
        migrate(state)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks_url = _serve_jwks(state, key)
        jwt_data = {
            "jwks_url": jwks_url,
            "jwks_ca_file": str(state.dir / "ca" / "ca.crt"),
            "audience": AUDIENCE,
            "issuer": ISSUER,
        }
        extra = [
            *("--data", f"gateway_jwt={json.dumps(jwt_data)}"),
            *("--data", f"gateway_limits={json.dumps(LIMITS)}"),
            *("--data", f"gateway_cors_origins={json.dumps([CORS_ORIGIN])}"),
        ]
        runs = (
            run_deploy(state, "deploys/gateway.py", extra=extra),
            run_deploy(state, "deploys/gateway.py", extra=extra),
        )
        for run in runs:
            assert run.returncode == 0, run.output[-4000:]
        client = ClientHost(state, "client1")
        client.put("/root/lab-ca.crt", (state.dir / "ca" / "ca.crt").read_text())
        yield Target(state, key, runs, client)
    finally:
        labs.down(name)
