"""Load abuse: floods are limited per subject and per address while other
callers keep working; slow clients and oversized bodies cost the gateway
little and are cut off.

The lab's gateway allows ``LIMITS`` (150 requests a minute per token
subject, 4000 per address).
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from .conftest import LIMITS, Target

pytestmark = pytest.mark.lab

SUBJECT_FLOOD = """
api = Api(DATA["host"])
flooder, bystander = [], []
for number in range(DATA["count"]):
    status, headers, _ = api.call(
        "GET", "/customers?select=id", {"Authorization": "Bearer " + DATA["flooder"]})
    flooder.append([status, headers.get("retry-after")])
    if number % 10 == 0:
        status, _, _ = api.call(
            "GET", "/customers?select=id",
            {"Authorization": "Bearer " + DATA["bystander"]})
        bystander.append(status)
result = {"flooder": flooder, "bystander": bystander}
"""


def test_a_flooding_subject_is_limited_while_another_keeps_working(
    target: Target,
) -> None:
    limit = int(LIMITS["per_subject"].split("/")[0])
    data = {
        "host": target.gateway_address,
        "count": limit + 50,
        "flooder": target.token(sub="flooder"),
        "bystander": target.token(sub="bystander"),
    }
    result = target.client.run(SUBJECT_FLOOD, data)
    statuses = [status for status, _ in result["flooder"]]
    assert statuses[:limit] == [200] * limit
    refused = [retry for status, retry in result["flooder"] if status == 429]
    assert len(refused) >= 40, statuses[limit:]
    assert all(retry and int(retry) > 0 for retry in refused)
    assert set(result["bystander"]) == {200}, result["bystander"]


def test_a_flooding_address_is_limited_while_another_keeps_working(
    target: Target,
) -> None:
    """The control machine floods (without a token: the address limit comes
    first, so even refused calls count); client1 is not held back."""
    limit = int(LIMITS["per_address"].split("/")[0])
    trust = ssl.create_default_context(cafile=str(target.ca_file))
    statuses: list[int] = []
    with httpx.Client(base_url=target.gateway_url, verify=trust, timeout=10) as flood:
        while len(statuses) < limit + 500:
            statuses.append(flood.get("/customers").status_code)
            if statuses[-1] == 429 and statuses.count(429) >= 20:
                break
    assert statuses.count(429) >= 20, statuses[-5:]
    assert set(statuses) <= {401, 429}, set(statuses)
    status = target.client.run(
        'result = Api(DATA["host"]).call("GET", "/customers", '
        '{"Authorization": "Bearer " + DATA["token"]})[0]',
        {"host": target.gateway_address, "token": target.token(sub="other-address")},
    )
    assert status == 200


SLOW_CLIENTS = """
def open_slow(count, send_headers):
    sockets = []
    for _ in range(count):
        raw = socket.create_connection((DATA["host"], 8443), timeout=30)
        if send_headers:
            tls = context().wrap_socket(raw, server_hostname=DATA["host"])
            tls.sendall(b"GET /customers HTTP/1.1\\r\\nHost: gateway\\r\\n")
            tls.setblocking(False)
            sockets.append(tls)
        else:
            raw.setblocking(False)
            sockets.append(raw)
    return sockets

started = time.monotonic()
slow = open_slow(DATA["slow"], True)
silent = open_slow(DATA["silent"], False)
opened = time.monotonic() - started
closed_at = {}
served = []
api = Api(DATA["host"])
while time.monotonic() - started < DATA["seconds"] and len(closed_at) < len(slow):
    for number, sock in enumerate(slow):
        if number in closed_at:
            continue
        try:
            sock.sendall(b"X-Slow: 1\\r\\n")
            data = sock.recv(4096)
            if data == b"" or data.startswith(b"HTTP/1.1 408"):
                closed_at[number] = time.monotonic() - started
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            closed_at[number] = time.monotonic() - started
    began = time.monotonic()
    status, _, _ = api.call(
        "GET", "/customers?select=id", {"Authorization": "Bearer " + DATA["token"]})
    served.append([status, time.monotonic() - began])
    time.sleep(1)
for sock in slow + silent:
    sock.close()
result = {"opened": opened, "closed_at": list(closed_at.values()), "served": served}
"""


def test_slow_clients_do_not_exhaust_the_gateway(target: Target) -> None:
    """Slowloris: 200 connections trickling header lines and 200 that never
    start TLS. Calls keep being served, and the trickling ones are cut off
    by the request deadline (10 s from the first byte)."""
    data: dict[str, Any] = {
        "host": target.gateway_address,
        "slow": 200,
        "silent": 200,
        "seconds": 40,
        "token": target.token(sub="patient"),
    }
    result = target.client.run(SLOW_CLIENTS, data)
    served = result["served"]
    assert len(served) >= 5, result
    assert {status for status, _ in served} == {200}, served
    assert max(seconds for _, seconds in served) < 3, served
    closed = result["closed_at"]
    assert len(closed) == data["slow"], f"{len(closed)} of {data['slow']} cut off"
    assert max(closed) < result["opened"] + 10 + 5, closed


BIG_BODY = """
def post(header_lines, chunks):
    raw = socket.create_connection((DATA["host"], 8443), timeout=20)
    tls = context().wrap_socket(raw, server_hostname=DATA["host"])
    head = "POST /customers HTTP/1.1\\r\\nHost: gateway\\r\\n" + "".join(
        line + "\\r\\n" for line in header_lines) + "\\r\\n"
    tls.sendall(head.encode())
    sent = 0
    tls.settimeout(0.05)
    answer = b""
    for chunk in chunks:
        try:
            answer += tls.recv(4096)
            if answer:
                break
        except (socket.timeout, ssl.SSLWantReadError):
            pass
        try:
            tls.sendall(chunk)
        except OSError:
            break
        sent += len(chunk)
    tls.settimeout(10)
    try:
        while b"\\r\\n\\r\\n" not in answer:
            more = tls.recv(4096)
            if not more:
                break
            answer += more
    except OSError:
        pass
    tls.close()
    return [answer.split(b"\\r\\n", 1)[0].decode(), sent]

auth = "Authorization: Bearer " + DATA["token"]
block = b"[" + b" " * 65534 + b"]"
declared = post([auth, "Content-Type: application/json",
                 "Content-Length: 104857600"], [block] * 1600)
piece = b"10000\\r\\n" + b" " * 65536 + b"\\r\\n"
chunked = post([auth, "Content-Type: application/json",
                "Transfer-Encoding: chunked"], [piece] * 1600)
result = {"declared": declared, "chunked": chunked}
"""


def test_oversized_bodies_are_refused_early(target: Target) -> None:
    """A body announced as 100 MB, and a chunked one that never ends: 413
    comes back long before the client has sent it (the limit is 1 MiB)."""
    result = target.client.run(
        BIG_BODY, {"host": target.gateway_address, "token": target.token(sub="big")}
    )
    for kind in ("declared", "chunked"):
        status_line, sent = result[kind]
        assert status_line.startswith("HTTP/1.1 413"), (kind, status_line)
        assert sent < 8 * 2**20, (kind, sent)
