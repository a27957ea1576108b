"""Cross-origin abuse from client1: only the one allowed origin is answered.

The gateway on this lab allows ``CORS_ORIGIN`` alone. A browser enforces
CORS from the ``Access-Control-Allow-*`` headers, so the proof is that no
other origin, however close to the allowed one, ever gets them back, that
``*`` never appears, and that a preflight for a method outside the list is
refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CORS_ORIGIN, Target

pytestmark = pytest.mark.lab

CALLS = """
api = Api(DATA["host"])
result = []
for method, origin, requested in DATA["calls"]:
    headers = {"Origin": origin, "Authorization": "Bearer " + DATA["token"]}
    if requested:
        headers["Access-Control-Request-Method"] = requested
        headers["Access-Control-Request-Headers"] = "authorization"
    status, answer, text = api.call(method, "/customers", headers)
    result.append([method, origin, requested, status, answer])
"""

ASKED = [("GET", None), ("OPTIONS", "GET"), ("OPTIONS", "DELETE")]
LOOKALIKES = [
    "https://evil.attack.test",
    "null",
    "http://app.attack.test",
    "https://app.attack.test.evil.test",
    "https://evil.test/https://app.attack.test",
    "https://app.attack.test:8443",
    "https://APP.ATTACK.TEST",
    "https://xapp.attack.test",
    "*",
]


def _calls(target: Target, calls: list[tuple[str, str, str | None]]) -> list[list[Any]]:
    data = {"host": target.gateway_address, "token": target.token(), "calls": calls}
    answers: list[list[Any]] = target.client.run(CALLS, data)
    return answers


def test_the_allowed_origin_is_echoed_exactly_and_never_a_wildcard(
    target: Target,
) -> None:
    calls = [("GET", CORS_ORIGIN, None), ("OPTIONS", CORS_ORIGIN, "GET")]
    answers = _calls(target, calls)
    for method, _, _, status, headers in answers:
        assert status in {200, 204}, (method, status)
        assert headers.get("access-control-allow-origin") == CORS_ORIGIN, method
        assert "origin" in headers.get("vary", "").lower(), method


def test_no_other_origin_gets_cors_headers(target: Target) -> None:
    calls = [
        (method, origin, requested)
        for origin in LOOKALIKES
        for method, requested in ASKED
    ]
    answers = _calls(target, calls)
    assert len(answers) == len(calls)
    granted = [
        (method, origin, requested)
        for method, origin, requested, _, headers in answers
        if any(name.startswith("access-control-allow") for name in headers)
    ]
    assert granted == [], granted
    for method, origin, requested, status, _ in answers:
        if method == "OPTIONS":
            assert status == 403, (origin, requested, status)


@pytest.mark.parametrize("method", ["PUT", "TRACE", "CONNECT", "PROPFIND"])
def test_a_preflight_for_a_method_not_allowed_is_refused(
    target: Target, method: str
) -> None:
    [[_, _, _, status, headers]] = _calls(target, [("OPTIONS", CORS_ORIGIN, method)])
    assert status == 403, status
    assert "access-control-allow-origin" not in headers
    assert "access-control-allow-methods" not in headers


def test_credentials_never_go_with_a_wildcard(target: Target) -> None:
    answers = _calls(
        target,
        [("GET", origin, None) for origin in [CORS_ORIGIN, *LOOKALIKES]]
        + [("OPTIONS", origin, "GET") for origin in [CORS_ORIGIN, *LOOKALIKES]],
    )
    for _, origin, _, _, headers in answers:
        allowed = headers.get("access-control-allow-origin")
        assert allowed != "*", origin
        if headers.get("access-control-allow-credentials") == "true":
            assert allowed == CORS_ORIGIN, origin
