"""Audit lines: one JSON object per request, never a credential or a value."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime

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


@pytest.mark.parametrize(
    ("subject", "method", "path", "duration", "client", "extra"),
    [
        ("alice", "get", "/orders?id=eq.1", 3.456, "10.0.0.9", {}),
        (None, "POST", "/rpc/x", 0, None, {"reason": "token expired"}),
        ('é\u2028\x00"\\', "PATCH", "/a\tb#c", 12, "::1", {"request_id": "r-1"}),
        (
            "s" * 300,
            "DELETE" * 5,
            "/" + "ü" * 400,
            1e-7,
            "c" * 99,
            {"reason": "", "request_id": ""},
        ),
        ("bob", "HEAD", "/", 123456789.987654, "10.0.0.1", {"reason": "\ud800"}),
    ],
)
def test_line_is_what_json_dumps_writes(
    subject: str | None,
    method: str,
    path: str,
    duration: float,
    client: str | None,
    extra: dict[str, str],
) -> None:
    # The line is put together by hand; it must stay json.dumps's output.
    record = {
        "ts": "2023-11-14T22:13:20.250Z",
        "subject": None if subject is None else subject[:128],
        "role": "web_user",
        "method": method.upper()[:16],
        "path": path.partition("?")[0].partition("#")[0][:256],
        "status": 201,
        "duration_ms": round(duration, 1),
        "client": None if client is None else client[:64],
    }
    if "reason" in extra:
        record["reason"] = extra["reason"][:128]
    if "request_id" in extra:
        record["request_id"] = extra["request_id"][:64]
    line = audit_line(
        subject, "web_user", method, path, 201, duration, client, now=NOW, **extra
    )

    assert line == json.dumps(record, sort_keys=True, separators=(",", ":"))


def test_timestamps_are_written_as_datetime_writes_them() -> None:
    randomly = random.Random(7)  # noqa: S311 - test data, not a secret
    moments = [NOW, 0.0, 1_700_000_000.9999995, 1_700_000_059.9995, 4102444799.9999999]
    moments += [randomly.uniform(0, 4e9) for _ in range(20000)]
    moments += [round(randomly.uniform(1e9, 2e9), 6) for _ in range(20000)]
    for moment in moments:
        expected = datetime.fromtimestamp(moment, UTC).isoformat(
            timespec="milliseconds"
        )
        line = json.loads(audit_line(None, None, "GET", "/", 200, 0, None, now=moment))
        assert line["ts"] == expected.replace("+00:00", "Z"), moment


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.audit.__all__) == [
        "AUDIT_LOGGER",
        "audit_line",
        "log_request",
    ]
