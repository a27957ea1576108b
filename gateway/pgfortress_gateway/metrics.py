"""Prometheus metrics and a health check, served on a separate, non-public listener.

The counters are plain dictionaries rendered in Prometheus' text format: the
gateway needs a handful of series, not a metrics library.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["Metrics", "metrics_app"]

# Upper bounds of the latency histogram, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counts by method and status, and a latency histogram."""

    def __init__(self) -> None:
        self.started = time.time()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.buckets: Counter[float] = Counter()
        self.duration_sum = 0.0
        self.duration_count = 0

    def observe(self, method: str, status: int, seconds: float) -> None:
        self.requests[(method, status)] += 1
        self.duration_sum += seconds
        self.duration_count += 1
        for bound in BUCKETS:
            if seconds <= bound:
                self.buckets[bound] += 1

    def render(self) -> str:
        lines = [
            "# HELP pgfortress_gateway_requests_total Requests answered.",
            "# TYPE pgfortress_gateway_requests_total counter",
        ]
        for (method, status), count in sorted(self.requests.items()):
            lines.append(
                f'pgfortress_gateway_requests_total{{method="{method}",'
                f'status="{status}"}} {count}'
            )
        lines += [
            "# HELP pgfortress_gateway_request_seconds Time to answer a request.",
            "# TYPE pgfortress_gateway_request_seconds histogram",
        ]
        for bound in BUCKETS:
            lines.append(
                f'pgfortress_gateway_request_seconds_bucket{{le="{bound}"}} '
                f"{self.buckets[bound]}"
            )
        lines += [
            f'pgfortress_gateway_request_seconds_bucket{{le="+Inf"}} '
            f"{self.duration_count}",
            f"pgfortress_gateway_request_seconds_sum {self.duration_sum:.6f}",
            f"pgfortress_gateway_request_seconds_count {self.duration_count}",
            "# TYPE pgfortress_gateway_start_time_seconds gauge",
            f"pgfortress_gateway_start_time_seconds {self.started:.0f}",
        ]
        return "\n".join(lines) + "\n"


def metrics_app(metrics: Metrics, healthy: Callable[[], Awaitable[bool]]) -> Starlette:
    """``/metrics`` and ``/health`` (200 when the database answers, else 503)."""

    async def show_metrics(request: Request) -> Response:
        return PlainTextResponse(
            metrics.render(), media_type="text/plain; version=0.0.4"
        )

    async def health(request: Request) -> Response:
        ok = await healthy()
        return JSONResponse(
            {"database": "ok" if ok else "unreachable"}, 200 if ok else 503
        )

    return Starlette(routes=[Route("/metrics", show_metrics), Route("/health", health)])
