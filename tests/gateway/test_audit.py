"""Audit lines: one JSON object per request, never a credential or a value."""

from __future__ import annotations

import json
import logging

import pgfortress_gateway.audit
import pytest
from pgfortress_gateway.audit import AUDIT_LOGGER, audit_line, log_request

NOW = 1_700_000_000.25


def test_line_is_sorted_compact_json() -> None:
    line = audit_line(
        "alice", "web_user", "get", "/orders", 200, 3.456, "10.0.0.9", now=NOW
    )

    assert line == (
        '{"client":"10.0.0.9","duration_ms":3.5,"method":"GET","path":"/orders",'
        '"role":"web_user","status":200,"subject":"alice",'
        '"ts":"2023-11-14T22:13:20.250Z"}'
    )


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/orders?email=eq.alice@example.com", "/orders"),
        ("/rpc/refund?amount=100&token=eyJhbGciOi", "/rpc/refund"),
        ("/orders#frag", "/orders"),
        ("/" + "x" * 1000, "/" + "x" * 255),
    ],
    ids=["filter-value", "token-in-query", "fragment", "long-path"],
)
def test_query_string_is_never_logged(path: str, logged: str) -> None:
    record = json.loads(audit_line(None, None, "GET", path, 400, 1, "10.0.0.9"))

    assert record["path"] == logged


def test_client_input_cannot_split_lines() -> None:
    line = audit_line(
        'mallory\n{"forged":1}',
        "web_user",
        "GET\r\n",
        "/a\nb",
        401,
        0.1,
        "x\n",
        reason="bad\nreason",
    )

    assert "\n" not in line
    assert "\r" not in line
    assert json.loads(line)["subject"] == 'mallory\n{"forged":1}'


def test_optional_fields_appear_only_when_given() -> None:
    plain = json.loads(audit_line(None, None, "GET", "/", 200, 0, None))
    full = json.loads(
        audit_line(
            None,
            None,
            "GET",
            "/",
            401,
            0,
            None,
            reason="token expired",
            request_id="r-1",
        )
    )

    assert "reason" not in plain
    assert "request_id" not in plain
    assert (full["reason"], full["request_id"]) == ("token expired", "r-1")


def test_log_request_writes_one_info_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER.name):
        log_request("alice", "web_user", "DELETE", "/orders?id=eq.7", 204, 2.0, "::1")

    [record] = caplog.records
    assert record.name == "pgfortress_gateway.audit"
    assert json.loads(record.getMessage())["path"] == "/orders"


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.audit.__all__) == [
        "AUDIT_LOGGER",
        "audit_line",
        "log_request",
    ]
