"""Request rate limits per token subject and per client address.

Counters live where ``limits.storage_uri`` says: in this process by default
(in memory the workers share, when there are several: :mod:`.sharedcounters`),
or in Redis so that several gateway hosts share them. The async API of the
``limits`` library is used, so a Redis round trip never blocks the event
loop. The sliding-window-counter strategy costs one or two keys per check
and does not let a client double its rate across a window boundary.

Call :meth:`RateLimiter.check_address` before authenticating (so a flood
of forged tokens is cut off before any signature is verified) and
:meth:`RateLimiter.check_subject` after; :meth:`RateLimiter.check` does both.

IPv6 clients are counted per /64, since one host usually holds a whole /64
and could otherwise rotate addresses to escape the limit.

When the store fails (Redis unreachable), ``limits.on_storage_error``
decides: ``deny`` answers 503 with Retry-After, ``allow`` lets the request
through and logs a warning.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from typing import NamedTuple, cast

import limits
from limits.aio.storage import MemoryStorage, SlidingWindowCounterSupport, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string

from .config import ConfigError, LimitsConfig
from .errors import RateLimitedError, UnavailableError
from .sharedcounters import SharedCounterStorage

__all__ = [
    "RateLimiter",
    "SweptMemoryStorage",
    "address_key",
    "async_storage_uri",
]

logger = logging.getLogger("pgfortress_gateway")

STORAGE_RETRY_AFTER = 5


def async_storage_uri(uri: str) -> str:
    """The ``limits`` URI of the async flavour of the store named by ``uri``."""
    return uri if uri.startswith("async+") else f"async+{uri}"


# Clients come back on their keep-alive connections: a request from an
# address seen lately costs a lookup instead of a parse.
@functools.lru_cache(maxsize=4096)
def address_key(address: str) -> str:
    """The counter name for a client address: IPv6 is grouped per /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class SweptMemoryStorage(MemoryStorage):
    """``limits``' in-process store, sweeping expired counters once a second.

    The library's store starts a sweep over every counter after each hit, so
    a request costs more the more clients were seen in the last window: a
    flood of distinct addresses would slow everyone down. Reading a counter
    already drops it once expired, so sweeping less often changes no count;
    it only returns memory a little later.
    """

    SWEEP_SECONDS = 1.0
    _next_sweep = 0.0

    # The library calls its private, name-mangled scheduler; this is that name.
    async def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """The library's check and count, read and written in one step.

        Its own version awaits six wrapped helpers per check, each read again
        under an asyncio lock that nothing else ever holds across an await.
        With nothing awaited between the read and the write, no other request
        can count in between, so the library's undo for that race is not
        needed either. Counts, keys and expiry times are the library's.
        """
        if amount > limit:
            return False
        now = time.time()
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._live_count(previous_key, now)
        current = self._live_count(current_key, now)
        weighted: float = current
        if previous:
            # The time left in the current window, as the library computes it.
            left = (1 - (((now - expiry) / expiry) % 1)) * expiry
            weighted += previous * left / expiry
        if math.floor(weighted) + amount > limit:
            return False
        if time.monotonic() >= self._next_sweep:  # the sweep's own clock
            await self._MemoryStorage__schedule_expiry()
        if current == 0:
            # The library keeps a window's counter for two windows.
            self.expirations[current_key] = now + 2 * expiry
        self.storage[current_key] = current + amount
        return True

    def _live_count(self, key: str, now: float) -> int:
        """A counter's value, dropping it first if it has expired."""
        if self.expirations.get(key, 0) <= now:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)
            return 0
        return self.storage.get(key, 0)


def _storage(uri: str) -> Storage:
    if uri.partition("://")[0] == "memory":
        return SweptMemoryStorage()
    options: dict[str, str] = {}
    if uri.partition("://")[0] in {"redis", "rediss", "redis+unix"}:
        # The gateway's "redis" extra installs redis-py, not coredis.
        options["implementation"] = "redispy"
    try:
        storage = storage_from_string(async_storage_uri(uri), **options)
    except ConfigurationError as exc:
        raise ConfigError([f"limits.storage_uri: {exc}"]) from None
    if not isinstance(storage, Storage):  # pragma: no cover - guarded by the prefix
        raise TypeError(f"{uri} did not give an async store")
    return storage


class _Counted(NamedTuple):
    """One limit, with its counter's name split around the counted name."""

    item: limits.RateLimitItem
    before: str
    after: str
    expiry: int


def _counted(setting: str, scope: str) -> list[_Counted]:
    """The limits of ``setting``; each counter is named as the strategy names
    it (``key_for("pgf", scope, name)``), so counters kept in Redis by other
    gateways are the same counters."""
    counted = []
    for item in limits.parse_many(setting):
        before, after = item.key_for("pgf", scope, "\0").split("\0")
        counted.append(_Counted(item, before, after, item.get_expiry()))
    return counted


class RateLimiter:
    """Counts requests and raises :class:`RateLimitedError` once a limit is spent."""

    def __init__(
        self,
        config: LimitsConfig,
        *,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_subject = _counted(config.per_subject, "subject")
        self._per_address = _counted(config.per_address, "address")
        self._fail_open = config.on_storage_error == "allow"
        self._strategy = SlidingWindowCounterRateLimiter(
            storage if storage is not None else _storage(config.storage_uri)
        )
        # The strategy checked at its creation that the store counts windows.
        self._storage = cast(SlidingWindowCounterSupport, self._strategy.storage)
        self._clock = clock
        scheme = config.storage_uri.partition("://")[0]
        if isinstance(storage, SharedCounterStorage):
            scheme = "shared memory"
        logger.info("rate limits ready, counters in %s storage", scheme)

    async def check(self, subject: str | None, address: str) -> None:
        await self.check_address(address)
        await self.check_subject(subject)

    async def check_address(self, address: str) -> None:
        await self._hit(self._per_address, "address", address_key(address))

    async def check_subject(self, subject: str | None) -> None:
        if subject is not None:
            await self._hit(self._per_subject, "subject", subject)

    async def _hit(self, counted: list[_Counted], scope: str, name: str) -> None:
        # What the strategy's hit does, without building each key from its
        # parts again on every call.
        storage = self._storage
        for item, before, after, expiry in counted:
            try:
                if await storage.acquire_sliding_window_entry(
                    before + name + after, item.amount, expiry
                ):
                    continue
                stats = await self._strategy.get_window_stats(item, "pgf", scope, name)
            except Exception as exc:
                self._storage_failed(exc)
                return
            wait = max(1, math.ceil(stats.reset_time - self._clock()))
            raise RateLimitedError(f"too many requests per {scope}", retry_after=wait)

    def _storage_failed(self, exc: Exception) -> None:
        if not self._fail_open:
            raise UnavailableError(
                "rate limit store unavailable", retry_after=STORAGE_RETRY_AFTER
            ) from exc
        logger.warning(
            "rate limit store failed (%s); letting the request through",
            type(exc).__name__,
        )
