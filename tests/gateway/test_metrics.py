"""Metrics rendered in Prometheus' text format."""

from __future__ import annotations

import json

from pgfortress_gateway.metrics import BUCKETS, Metrics


def test_counts_and_histogram() -> None:
    metrics = Metrics()
    metrics.observe("GET", 200, 0.004)
    metrics.observe("GET", 200, 0.2)
    metrics.observe("POST", 401, 20.0)
    text = metrics.render()
    assert 'pgfortress_gateway_requests_total{method="GET",status="200"} 2' in text
    assert 'pgfortress_gateway_requests_total{method="POST",status="401"} 1' in text
    assert f'pgfortress_gateway_request_seconds_bucket{{le="{BUCKETS[0]}"}} 1' in text
    assert 'pgfortress_gateway_request_seconds_bucket{le="0.25"} 2' in text
    assert 'pgfortress_gateway_request_seconds_bucket{le="+Inf"} 3' in text
    assert "pgfortress_gateway_request_seconds_count 3" in text
    assert text.endswith("\n")


def test_an_empty_gateway_renders_zeroes() -> None:
    text = Metrics().render()
    assert "pgfortress_gateway_request_seconds_count 0" in text
    assert "requests_total{" not in text


def test_worker_snapshots_add_up_to_what_one_process_would_count() -> None:
    one, first, second = Metrics(), Metrics(), Metrics()
    for index, (method, status, seconds) in enumerate(
        [("GET", 200, 0.004), ("GET", 200, 0.02), ("POST", 201, 0.3), ("GET", 404, 7)]
    ):
        one.observe(method, status, seconds)
        (first if index % 2 else second).observe(method, status, seconds)
    summed = Metrics()
    summed.started = one.started
    for worker in (first, second):
        summed.add(json.loads(json.dumps(worker.snapshot())))
    assert summed.render() == one.render()
