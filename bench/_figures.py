"""Reading the load generators' output into figures; no host, no I/O.

wrk prints its latency distribution with units (``812.00us``, ``1.20ms``,
``1.02s``); pgbench prints tps and, with ``-l``, one line per transaction
whose third field is the latency in microseconds. Each script's section of
docs/benchmarks.md is swapped in by :func:`replace_section`.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "Figures",
    "median_of",
    "parse_pgbench",
    "parse_wrk",
    "percentile",
    "replace_section",
]

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_DURATION = re.compile(r"^([\d.]+)(us|ms|s)$")


@dataclass(frozen=True)
class Figures:
    """One timed run of one load generator."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of unsorted ``values``."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _millis(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a wrk duration")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> Figures:
    """Figures from ``wrk --latency`` output; failures are non-2xx answers and
    socket errors, which a throughput figure must not hide."""
    quantiles: dict[str, float] = {}
    rate = requests = failures = None
    for line in output.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] in {"50%", "99%"}:
            quantiles[words[0]] = _millis(words[1])
        elif line.startswith("Requests/sec:"):
            rate = float(words[1])
        elif "requests in" in line:
            requests = int(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            failures = (failures or 0) + int(words[-1])
        elif line.strip().startswith("Socket errors:"):
            counts = re.findall(r"(\d+)", line)
            failures = (failures or 0) + sum(int(c) for c in counts)
    if rate is None or requests is None or set(quantiles) != {"50%", "99%"}:
        raise ValueError("wrk output without a rate or latency:\n" + output)
    return Figures(rate, quantiles["50%"], quantiles["99%"], requests, failures or 0)


def parse_pgbench(output: str, log_lines: Iterable[str]) -> Figures:
    """Figures from pgbench's summary and its per-transaction log (``-l``)."""
    tps = re.search(
        r"^tps = ([\d.]+) \(without initial connection time\)", output, re.M
    )
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.M)
    if tps is None:
        raise ValueError("pgbench output without tps:\n" + output)
    latencies = [int(line.split()[2]) / 1000 for line in log_lines if line.strip()]
    return Figures(
        float(tps.group(1)),
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        len(latencies),
        int(failed.group(1)) if failed else 0,
    )


def median_of(runs: Sequence[Figures]) -> Figures:
    """The median of each figure over several runs of the same thing."""
    return Figures(
        statistics.median(r.requests_per_s for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.requests for r in runs),
        sum(r.failures for r in runs),
    )


def replace_section(text: str, start: str, end: str, new: str) -> str:
    """``text`` with the part from ``start`` to ``end`` replaced by ``new``
    (which carries both markers), or ``new`` appended if there is none."""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        return before + new + rest.split(end, 1)[1].removeprefix("\n")
    return text.rstrip("\n") + "\n\n" + new
