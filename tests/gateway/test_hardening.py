"""Limits found by attacking the gateway: each stays fixed."""

from __future__ import annotations

import pytest
from pgfortress_gateway.errors import (
    GatewayError,
    PayloadError,
    RateLimitedError,
    RequestError,
)
from pgfortress_gateway.grammar import parse_read
from pgfortress_gateway.sql import build_read

from .test_grammar import make_cache


@pytest.mark.parametrize("asked", [None, "5000"])
def test_embedded_rows_are_capped(asked: str | None) -> None:
    params = [("select", "id,orders(id)")]
    if asked is not None:
        params.append(("orders.limit", asked))
    cache = make_cache()
    query = build_read(parse_read("customers", params, {}, cache), cache, 100)
    assert 1000 in query.params
    assert 5000 not in query.params


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RequestError("x", status=409), "PGF409"),
        (RequestError("x", status=416), "PGF416"),
        (PayloadError("x", status=415), "PGF415"),
        (GatewayError("x", status=504), "PGF504"),
        (RateLimitedError("x", retry_after=1), "PGF429"),
    ],
)
def test_the_code_follows_the_status_answered(error: GatewayError, code: str) -> None:
    assert error.body()["code"] == code
