"""bench/gateway_memory.py: samples, the warm-up point and the verdict."""

from __future__ import annotations

import pytest

from bench._lab import BenchError
from bench.gateway_memory import Sample, parse_memory, summarise


def _samples(pid_at_end: int = 42) -> list[Sample]:
    return [
        Sample(0.0, 0, 70_000, 66_000, 42),
        Sample(30.0, 30_000, 74_000, 70_000, 42),
        Sample(60.0, 60_000, 76_000, 72_000, 42),
        Sample(900.0, 1_000_100, 80_000, 75_000, pid_at_end),
    ]


def test_a_sample_line_reads_time_memory_and_pid() -> None:
    assert parse_memory("1733.25 76000 72000 42", 9) == Sample(
        1733.25, 9, 76000, 72000, 42
    )


def test_warm_up_is_the_first_sample_past_50000_requests() -> None:
    found = summarise(_samples(), [], [], 900.0)
    assert found["warm_up"]["requests"] == 60_000
    assert found["rss_growth"] == pytest.approx(4_000 / 76_000, abs=1e-4)
    assert found["meets"] is True


def test_growth_beyond_ten_percent_misses() -> None:
    samples = _samples()
    samples[-1] = Sample(900.0, 1_000_100, 84_000, 80_000, 42)
    assert summarise(samples, [], [], 900.0)["meets"] is False


def test_a_restarted_gateway_voids_the_run() -> None:
    with pytest.raises(BenchError, match="main PID changed"):
        summarise(_samples(pid_at_end=43), [], [], 900.0)
