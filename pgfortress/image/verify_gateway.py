"""Verification of a gateway image: once given its identity, it serves.

A gateway image carries the gateway installed and enabled, and nothing that
names a host, a database or a key (:mod:`.identity`). After the scan of
:mod:`.verify`:

1. A lab boots ``gw1`` from the image and ``db1`` from the platform's fresh
   root filesystem (the database is not part of the image; the gateway needs
   one to start at all).
2. As booted: the gateway's venv is there, its unit is enabled and skipped
   by the image's drop-in (no configuration yet), not failed, and
   ``/etc/pgfortress-gateway`` holds nothing (the token secret with
   ``--keep-secrets``). See :func:`booted_problems`.
3. The database it will serve: ``deploys/site.py`` on db1 with
   :data:`CHECK_ROLES` (the authenticator and the roles it switches to),
   then the example application :data:`CHECK_APP`: the gateway checks at
   start that the authenticator may switch to every allowed role.
4. The follow-up deploy, ``deploys/gateway.py`` at inventory stage
   ``identity`` (db1 as database, a certificate from the lab's CA, its
   secrets, an address filter letting only the control machine call it),
   twice: the second run must change nothing.
5. The host checks of ``tests/host`` on gw1 (``pgfortress audit --host
   gw1``), among them the gateway's (``tests/host/test_gateway.py``), which
   the live deploy test runs too: none may fail, and some must have run.
6. Real HTTPS requests from the control machine, TLS checked against the
   lab's CA: ``GET`` :data:`CHECK_PATH` with a token signed with the
   gateway's secret must answer 200 with rows; without a token, 401.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab.progress import Progress
from pgfortress.plan.gateway import GatewayLayout

from ._errors import ImageError
from ._run import audit, deploy, on_host
from ._verdict import DPKG_QUERY, failure, require_no_change, summary
from .bake import HOSTS, deploy_file
from .export import Artifacts, BuildRecord
from .manifest import parse_packages
from .scan import KEPT_WITH_SECRETS

__all__ = [
    "BOOTED_FACTS",
    "CHECK_APP",
    "CHECK_PATH",
    "CHECK_ROLES",
    "booted_problems",
    "parse_facts",
    "verify_gateway",
]

HOST = HOSTS["gateway"]
DATABASE = HOSTS["db"]
LAYOUT = GatewayLayout()
CHECK_ROLES = "specs/lab.yml"
CHECK_APP = "docs/examples/api-app.sql"
CHECK_PATH = "/customers?order=id"
# How long the service may take to answer after the deploy started it.
READY_SECONDS = 120

# One line per fact, "name=value", read on the booted image.
BOOTED_FACTS = (
    f"printf 'enabled=%s\\n' \"$(systemctl is-enabled {LAYOUT.service} 2>&1)\"; "
    f"printf 'active=%s\\n' \"$(systemctl is-active {LAYOUT.service} 2>&1)\"; "
    "printf 'condition=%s\\n' "
    f'"$(systemctl show -p ConditionResult --value {LAYOUT.service})"; '
    f"printf 'venv=%s\\n' \"$(test -x {LAYOUT.venv}/bin/pgfortress-gateway "
    '&& echo yes || echo no)"; '
    f"printf 'files=%s\\n' \"$(ls -A {LAYOUT.etc} | tr '\\n' ' ')\""
)
_PSQL_APP = "runuser -u postgres -- env -C / psql -X -q -v ON_ERROR_STOP=1 -d app"


def parse_facts(text: str) -> dict[str, str]:
    """``name=value`` lines of :data:`BOOTED_FACTS` as a mapping."""
    facts = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            facts[name.strip()] = value.strip()
    return facts


def booted_problems(facts: Mapping[str, str], keep_secrets: bool) -> list[str]:
    """What is wrong with a gateway image as booted, before any deploy."""
    problems = []
    if facts.get("venv") != "yes":
        problems.append(f"{LAYOUT.venv}/bin/pgfortress-gateway is missing")
    if facts.get("enabled") != "enabled":
        problems.append(f"the unit is {facts.get('enabled')!r}, not enabled")
    if facts.get("active") != "inactive" or facts.get("condition") != "no":
        problems.append(
            f"the unit is {facts.get('active')!r} (condition "
            f"{facts.get('condition')!r}); without a configuration it must be "
            "skipped by the image's drop-in, neither running nor failed"
        )
    allowed = {path.rsplit("/", 1)[1] for path in KEPT_WITH_SECRETS}
    present = set(facts.get("files", "").split())
    left = sorted(present - allowed if keep_secrets else present)
    if left:
        problems.append(f"{LAYOUT.etc} holds {', '.join(left)} before any deploy")
    return problems


def _call(url: str, token: str | None, ca_file: Path) -> tuple[int, str]:
    """One HTTPS GET; no proxy, TLS checked against ``ca_file`` only."""
    context = ssl.create_default_context(cafile=str(ca_file))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url)  # noqa: S310 - https to a lab host
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with opener.open(request, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _serving(url: str, ca_file: Path) -> None:
    """Wait until the gateway answers at all (it was just started)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            _call(url, None, ca_file)
            return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise ImageError(
                    f"verification failed: the gateway did not answer at {url} "
                    f"within {READY_SECONDS} s after its deploy ({error}); no "
                    "manifest written"
                ) from None
            time.sleep(2)


def _requests(state: labs.LabState) -> dict[str, Any]:
    """A read with a token and one without, from the control machine."""
    address = state.hosts[HOST].address
    url = f"https://{address}:8443{CHECK_PATH}"
    ca_file = state.dir / "ca" / "ca.crt"
    _serving(url, ca_file)
    secret = (state.dir / "secrets" / "gateway" / "jwt-secret").read_text().strip()
    claims = {"role": "web_user", "sub": "pgfortress image verify"}
    token = jwt.encode(claims | {"exp": int(time.time()) + 300}, secret, "HS256")
    status, text = _call(url, token, ca_file)
    rows = json.loads(text) if status == 200 else None
    if not isinstance(rows, list) or not rows:
        raise ImageError(
            f"verification failed: GET {CHECK_PATH} with a token answered "
            f"{status}: {text[:300]}; no manifest written"
        )
    anonymous, answer = _call(url, None, ca_file)
    if anonymous != 401:
        raise ImageError(
            f"verification failed: GET {CHECK_PATH} without a token answered "
            f"{anonymous}, not 401: {answer[:300]}; no manifest written"
        )
    return {
        "path": CHECK_PATH,
        "with_token": {"status": status, "rows": len(rows)},
        "without_token": {"status": anonymous},
    }


def verify_gateway(
    record: BuildRecord,
    files: Artifacts,
    lab: str,
    repo: Path,
    progress: Progress,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Steps 1 to 6; the image's packages and what the manifest records."""
    gateway_deploy = deploy_file(repo, "gateway", None)
    site = deploy_file(repo, "db", CHECK_ROLES)
    roles = str(repo / CHECK_ROLES)
    state = labs.up(
        lab,
        [DATABASE, HOST],
        progress,
        platform=record.platform,
        images={HOST: files.rootfs},
    )
    try:
        work = state.dir / "image"
        packages = parse_packages(on_host(state, HOST, DPKG_QUERY))
        facts = parse_facts(on_host(state, HOST, BOOTED_FACTS))
        problems = booted_problems(facts, record.keep_secrets)
        if problems:
            raise ImageError(
                "verification failed: the image as booted: "
                + "; ".join(problems)
                + "; no manifest written"
            )
        tls.init_ca(state.dir / "ca", f"pgfortress image check {lab} CA")
        with progress.step(f"the database it serves: {site.name} on {DATABASE}"):
            deploy(state, site, "identity", work, roles, "gateway")
            app = (repo / CHECK_APP).read_text()
            on_host(state, DATABASE, _PSQL_APP, stdin=app)
        with progress.step("follow-up deploy: the gateway's identity"):
            first = deploy(state, gateway_deploy, "identity", work, roles, "gateway")
            second = deploy(state, gateway_deploy, "identity", work, roles, "gateway")
        require_no_change(second)
        with progress.step(f"host checks on {HOST}"):
            deployed = audit(
                state,
                "identity",
                work,
                roles,
                files.junit,
                files.html,
                "gateway",
                hosts=(HOST,),
            )
        problem = failure("after the follow-up deploy", deployed, {})
        ran = deployed.unnamed_counts()
        if not problem and not ran.get("passed"):
            problem = "after the follow-up deploy: no gateway host check ran"
        if problem:
            raise ImageError(
                f"verification failed: {problem}; reports: {files.junit}, "
                f"{files.html}; no manifest written"
            )
        with progress.step("HTTPS requests through the gateway"):
            requests = _requests(state)
    finally:
        labs.down(lab, progress)
    return packages, {
        "booted": {"facts": facts, "problems": []},
        "deployed": summary(deployed)
        | {
            "host_checks": ran,
            "follow_up_changes": [first.changed, second.changed],
            "junit": files.junit.name,
            "html": files.html.name,
        },
        "requests": requests,
    }
