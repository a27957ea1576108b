"""Rate-limit counters shared by forked workers (no Redis, no network)."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Coroutine
from typing import Any, Literal

import pytest
from pgfortress_gateway.config import LimitsConfig
from pgfortress_gateway.errors import RateLimitedError, UnavailableError
from pgfortress_gateway.ratelimit import RateLimiter
from pgfortress_gateway.sharedcounters import (
    PROBES,
    CountersUnavailableError,
    SharedCounterStorage,
)

T0 = 60 * 16667 + 20.0  # 20 s into a minute window


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _hits(store: SharedCounterStorage, key: str, limit: int, times: int) -> list[bool]:
    async def hits() -> list[bool]:
        return [
            await store.acquire_sliding_window_entry(key, limit, 60)
            for _ in range(times)
        ]

    return list(asyncio.run(hits()))


def test_a_counter_allows_its_limit_then_refuses() -> None:
    store = SharedCounterStorage(64, clock=Clock())
    assert _hits(store, "a", 3, 4) == [True, True, True, False]
    assert _hits(store, "b", 3, 1) == [True]


def test_the_previous_window_weighs_by_the_time_left_in_this_one() -> None:
    clock = Clock(60 * 16667.0)  # the first instant of a window
    store = SharedCounterStorage(64, clock=clock)
    assert _hits(store, "a", 10, 10) == [True] * 10
    # 45 s into the next window the last one counts 10 * 15/60 = 2.5, and a
    # hit is allowed while floor(2.5 + current) + 1 <= 10, as in ``limits``.
    clock.now += 60 + 45
    assert _hits(store, "a", 10, 9) == [True] * 8 + [False]
    assert run(store.get_sliding_window("a", 60)) == (10, 15.0, 8, 75.0)
    clock.now += 120  # two windows later nothing is left
    assert run(store.get_sliding_window("a", 60)) == (0, 0.0, 0, 75.0)


def test_workers_forked_after_creation_count_together() -> None:
    store = SharedCounterStorage(64)

    def spend() -> None:
        _hits(store, "subject", 5, 3)

    context = multiprocessing.get_context("fork")
    children = [context.Process(target=spend) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    assert run(store.get_sliding_window("subject", 60))[2] == 5
    assert _hits(store, "subject", 5, 1) == [False]


def test_a_full_neighbourhood_fails_as_a_store_failure() -> None:
    store = SharedCounterStorage(PROBES, clock=Clock())
    for n in range(PROBES):
        assert _hits(store, f"k{n}", 10, 1) == [True]
    with pytest.raises(CountersUnavailableError, match="full"):
        _hits(store, "one too many", 10, 1)


def test_expired_counters_free_their_slots() -> None:
    clock = Clock()
    store = SharedCounterStorage(PROBES, clock=clock)
    for n in range(PROBES):
        _hits(store, f"k{n}", 10, 1)
    clock.now += 120
    assert _hits(store, "newcomer", 10, 1) == [True]


@pytest.mark.parametrize(
    ("policy", "raised"), [("deny", UnavailableError), ("allow", None)]
)
def test_the_limiter_refuses_with_429_and_follows_the_store_policy(
    policy: Literal["deny", "allow"], raised: type[Exception] | None
) -> None:
    store = SharedCounterStorage(PROBES, clock=Clock())
    config = LimitsConfig(
        per_subject="2/minute", per_address="1000/minute", on_storage_error=policy
    )
    rate = RateLimiter(config, storage=store)

    async def scenario() -> None:
        await rate.check("alice", "10.0.0.1")
        await rate.check("alice", "10.0.0.1")
        with pytest.raises(RateLimitedError):
            await rate.check("alice", "10.0.0.1")
        for n in range(PROBES - 2):  # alice's two counters hold the others
            await store.acquire_sliding_window_entry(f"filler{n}", 10, 60)
        if raised is None:
            await rate.check("bob", "10.0.0.9")
        else:
            with pytest.raises(raised):
                await rate.check("bob", "10.0.0.9")

    run(scenario())


def test_clear_and_reset_empty_the_counters() -> None:
    store = SharedCounterStorage(64, clock=Clock())
    _hits(store, "a", 5, 2)
    _hits(store, "b", 5, 1)
    run(store.clear_sliding_window("a", 60))
    assert run(store.get("a")) == 0
    assert run(store.get("b")) == 1
    assert run(store.reset()) == 1
    assert run(store.get("b")) == 0
