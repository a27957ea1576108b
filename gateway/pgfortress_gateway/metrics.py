"""Prometheus metrics and a health check, served on a separate, non-public listener.

The counters are plain dictionaries rendered in Prometheus' text format: the
gateway needs a handful of series, not a metrics library.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

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

    def snapshot(self) -> dict[str, Any]:
        """The counts as plain JSON, for a worker to send to the main process."""
        return {
            "requests": [[m, s, n] for (m, s), n in self.requests.items()],
            "buckets": [[bound, n] for bound, n in self.buckets.items()],
            "sum": self.duration_sum,
            "count": self.duration_count,
        }

    def add(self, snapshot: Mapping[str, Any]) -> None:
        """Add a worker's :meth:`snapshot` to these counts."""
        for method, status, count in snapshot["requests"]:
            self.requests[(str(method), int(status))] += int(count)
        for bound, count in snapshot["buckets"]:
            self.buckets[float(bound)] += int(count)
        self.duration_sum += float(snapshot["sum"])
        self.duration_count += int(snapshot["count"])

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


def metrics_app(
    metrics: Callable[[], Metrics],
    healthy: Callable[[], Awaitable[bool]],
    extra_health: Callable[[], tuple[dict[str, Any], bool]] | None = None,
) -> Starlette:
    """``/metrics`` and ``/health`` (200 when the database answers, else 503).

    ``metrics`` returns the counts as they are now: one process's own, or
    the sum of the workers' reports; ``extra_health`` adds fields to the
    health answer and may fail it.
    """

    async def show_metrics(request: Request) -> Response:
        return PlainTextResponse(
            metrics().render(), media_type="text/plain; version=0.0.4"
        )

    async def health(request: Request) -> Response:
        ok = await healthy()
        body: dict[str, Any] = {"database": "ok" if ok else "unreachable"}
        if extra_health is not None:
            extra, fine = extra_health()
            body.update(extra)
            ok = ok and fine
        return JSONResponse(body, 200 if ok else 503)

    return Starlette(routes=[Route("/metrics", show_metrics), Route("/health", health)])
