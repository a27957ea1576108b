"""Rate limit decisions, with the in-memory store (no Redis needed)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import time
from collections.abc import Coroutine
from typing import Any, Literal

import limits
import pgfortress_gateway.ratelimit
import pytest
from limits.aio.storage import MemoryStorage
from pgfortress_gateway.config import ConfigError, LimitsConfig
from pgfortress_gateway.errors import RateLimitedError, UnavailableError
from pgfortress_gateway.ratelimit import (
    RateLimiter,
    SweptMemoryStorage,
    address_key,
    async_storage_uri,
)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


def limiter(**settings: Any) -> RateLimiter:
    return RateLimiter(LimitsConfig(**settings), storage=SweptMemoryStorage())


async def _spend(
    rate: RateLimiter, calls: int, subject: str | None, address: str
) -> None:
    for _ in range(calls):
        await rate.check(subject, address)


def test_subject_limit_applies_across_addresses() -> None:
    rate = limiter(per_subject="3/minute", per_address="100/minute")

    async def scenario() -> None:
        await _spend(rate, 3, "alice", "10.0.0.1")
        with pytest.raises(RateLimitedError) as caught:
            await rate.check("alice", "10.0.0.2")
        assert 1 <= caught.value.retry_after <= 60
        assert caught.value.status == 429
        await rate.check("bob", "10.0.0.2")

    run(scenario())


def test_address_limit_applies_to_anonymous_callers() -> None:
    rate = limiter(per_subject="100/minute", per_address="2/minute")

    async def scenario() -> None:
        await _spend(rate, 2, None, "192.0.2.7")
        with pytest.raises(RateLimitedError, match="per address"):
            await rate.check(None, "192.0.2.7")
        await rate.check(None, "192.0.2.8")

    run(scenario())


def test_ipv6_clients_share_a_counter_per_64() -> None:
    rate = limiter(per_address="2/minute")

    async def scenario() -> None:
        await rate.check(None, "2001:db8:1:2::1")
        await rate.check(None, "2001:db8:1:2:ffff::9")
        with pytest.raises(RateLimitedError):
            await rate.check(None, "2001:db8:1:2::abcd")
        await rate.check(None, "2001:db8:1:3::1")

    run(scenario())


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("testclient", "testclient"),
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


def test_several_limits_in_one_setting() -> None:
    rate = limiter(per_subject="2/second;100/minute")

    async def scenario() -> None:
        await _spend(rate, 2, "alice", "10.0.0.1")
        with pytest.raises(RateLimitedError) as caught:
            await rate.check("alice", "10.0.0.1")
        assert caught.value.retry_after <= 2

    run(scenario())


class BrokenStorage(MemoryStorage):
    async def incr(self, *args: Any, **kwargs: Any) -> int:
        raise ConnectionError("store down")

    async def acquire_sliding_window_entry(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("store down")


@pytest.mark.parametrize("policy", ["deny", "allow"])
def test_store_failure_follows_the_configured_policy(
    policy: Literal["deny", "allow"], caplog: pytest.LogCaptureFixture
) -> None:
    rate = RateLimiter(LimitsConfig(on_storage_error=policy), storage=BrokenStorage())

    async def scenario() -> None:
        if policy == "deny":
            with pytest.raises(UnavailableError) as caught:
                await rate.check("alice", "10.0.0.1")
            assert caught.value.retry_after > 0
        else:
            with caplog.at_level(logging.WARNING, logger="pgfortress_gateway"):
                await rate.check("alice", "10.0.0.1")
            assert "letting the request through" in caplog.text

    run(scenario())


def test_memory_store_is_built_from_the_default_uri() -> None:
    rate = RateLimiter(LimitsConfig())
    assert isinstance(rate._strategy.storage, SweptMemoryStorage)

    async def scenario() -> None:
        started = time.perf_counter()
        await _spend(rate, 50, "alice", "10.0.0.1")
        assert time.perf_counter() - started < 1

    run(scenario())


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("memory://", "async+memory://"),
        ("redis://10.0.0.5:6379", "async+redis://10.0.0.5:6379"),
        ("async+redis://h:1", "async+redis://h:1"),
    ],
)
def test_async_storage_uri(uri: str, expected: str) -> None:
    assert async_storage_uri(uri) == expected


@pytest.mark.skipif(
    importlib.util.find_spec("redis") is not None,
    reason="redis-py is installed, so the missing-library error cannot happen",
)
def test_redis_store_without_its_client_library_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"limits\.storage_uri"):
        RateLimiter(LimitsConfig(storage_uri="redis://10.0.0.5:6379"))


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.ratelimit.__all__) == [
        "RateLimiter",
        "SweptMemoryStorage",
        "address_key",
        "async_storage_uri",
    ]


def test_the_memory_store_sweeps_at_most_once_a_second() -> None:
    # limits' own store sweeps every counter after every hit: a cost per
    # request that grows with the number of clients seen.
    storage = SweptMemoryStorage()
    sweeps: list[float] = []

    async def counted_sweep() -> None:
        sweeps.append(time.monotonic())

    storage._MemoryStorage__expire_events = counted_sweep  # type: ignore[attr-defined]
    rate = RateLimiter(LimitsConfig(per_address="5/second"), storage=storage)

    async def scenario() -> None:
        for n in range(200):
            await rate.check_address(f"10.0.{n // 250}.{n % 250}")
        await asyncio.sleep(0)

    run(scenario())
    assert len(sweeps) == 1


def test_expired_counters_stop_counting_between_sweeps() -> None:
    rate = limiter(per_address="2/second")

    async def scenario() -> None:
        await _spend(rate, 2, None, "10.0.0.1")
        with pytest.raises(RateLimitedError):
            await rate.check_address("10.0.0.1")
        await asyncio.sleep(2.1)
        await rate.check_address("10.0.0.1")

    run(scenario())


def test_the_swept_store_counts_as_the_library_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The swept store reads and counts in one step; decisions, counts and
    # expiry times must stay the library's, across window boundaries.
    clock = [1_700_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    library, swept = MemoryStorage(), SweptMemoryStorage()
    steps = [0.4, 0.05, 1.3, 0.01, 0.7, 0.2, 0.1, 4.9, 0.3, 0.0, 11.0, 0.6] * 6

    async def scenario() -> list[tuple[bool, bool]]:
        answers = []
        for n, step in enumerate(steps):
            clock[0] += step
            key = f"pgf/address/10.0.0.{n % 2}"
            answers.append(
                (
                    await library.acquire_sliding_window_entry(key, 3, 10),
                    await swept.acquire_sliding_window_entry(key, 3, 10),
                )
            )
        assert swept.storage == library.storage
        assert swept.expirations == library.expirations
        return answers

    answers = asyncio.run(scenario())
    assert all(ours == theirs for theirs, ours in answers)
    assert {ours for _, ours in answers} == {True, False}


def test_counters_are_named_as_the_library_names_them() -> None:
    # Gateways of different versions may share one Redis: same names, same counts.
    rate = limiter(per_subject="2/second;100/minute")
    names = [counted.before + "alice" + counted.after for counted in rate._per_subject]
    assert names == [
        item.key_for("pgf", "subject", "alice")
        for item in limits.parse_many("2/second;100/minute")
    ]
