"""CORS decisions: exact origins only, never a wildcard with credentials."""

from __future__ import annotations

import pgfortress_gateway.cors
import pytest
from pgfortress_gateway.config import CorsConfig
from pgfortress_gateway.cors import CorsPolicy, CorsRefusedError

APP = "https://app.example"


@pytest.fixture
def policy() -> CorsPolicy:
    return CorsPolicy(
        [APP, "http://localhost:5173"],
        allow_credentials=True,
        allowed_methods=["GET", "POST", "PATCH"],
        allowed_headers=["Authorization", "Content-Type", "Prefer"],
        max_age=300,
    )


def test_preflight_from_allowed_origin(policy: CorsPolicy) -> None:
    headers = policy.preflight(APP, "PATCH", "authorization, Content-Type")

    assert headers == {
        "Access-Control-Allow-Origin": APP,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "GET, POST, PATCH",
        "Access-Control-Allow-Headers": "authorization, content-type",
        "Access-Control-Max-Age": "300",
        "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }


@pytest.mark.parametrize(
    ("origin", "method", "request_headers", "reason"),
    [
        ("https://evil.example", "GET", None, "origin not allowed"),
        ("https://app.example.evil.example", "GET", None, "origin not allowed"),
        ("https://APP.example", "GET", None, "origin not allowed"),
        ("https://app.example:443", "GET", None, "origin not allowed"),
        ("http://app.example", "GET", None, "origin not allowed"),
        ("null", "GET", None, "origin not allowed"),
        (None, "GET", None, "origin not allowed"),
        (APP, "DELETE", None, "method not allowed"),
        (APP, "get", None, "method not allowed"),
        (APP, None, None, "method not allowed"),
        (APP, "POST", "authorization, x-debug", "headers not allowed: x-debug"),
    ],
    ids=[
        "other-origin",
        "suffix-trick",
        "case-differs",
        "explicit-port",
        "other-scheme",
        "null-origin",
        "no-origin",
        "method",
        "lowercase-method",
        "no-method",
        "header",
    ],
)
def test_preflight_refusals(
    policy: CorsPolicy,
    origin: str | None,
    method: str | None,
    request_headers: str | None,
    reason: str,
) -> None:
    with pytest.raises(CorsRefusedError) as caught:
        policy.preflight(origin, method, request_headers)

    assert caught.value.status == 403
    assert caught.value.reason == reason
    assert "Access-Control-Allow-Origin" not in caught.value.headers


def test_simple_request_from_allowed_origin(policy: CorsPolicy) -> None:
    headers = policy.simple(APP)

    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert headers["Vary"] == "Origin"
    assert "Content-Range" in headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_simple_request_from_other_origin_gets_only_vary(
    policy: CorsPolicy, origin: str | None
) -> None:
    assert policy.simple(origin) == {"Vary": "Origin"}


def test_without_credentials_no_credentials_header() -> None:
    policy = CorsPolicy([APP])

    assert "Access-Control-Allow-Credentials" not in policy.simple(APP)
    assert "Access-Control-Allow-Credentials" not in policy.preflight(APP, "GET", None)


def test_wildcard_answers_star_and_never_reflects() -> None:
    policy = CorsPolicy(["*"])

    assert policy.simple("https://any.example")["Access-Control-Allow-Origin"] == "*"
    headers = policy.preflight("https://any.example", "GET", None)
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(
    ("origins", "credentials"),
    [(["*"], True), (["*", APP], False), (["null"], False)],
    ids=["wildcard-credentials", "wildcard-mixed", "null"],
)
def test_unsafe_policies_cannot_be_built(origins: list[str], credentials: bool) -> None:
    with pytest.raises(ValueError, match=r"stand alone|null"):
        CorsPolicy(origins, allow_credentials=credentials)


def test_policy_from_config_defaults_allow_postgrest_headers() -> None:
    policy = CorsPolicy.from_config(CorsConfig(allowed_origins=(APP,)))

    headers = policy.preflight(APP, "POST", "authorization,content-type,prefer,range")
    assert headers["Access-Control-Allow-Origin"] == APP
    assert policy.simple(None) == {"Vary": "Origin"}


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.cors.__all__) == ["CorsPolicy", "CorsRefusedError"]
