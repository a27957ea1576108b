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

import ipaddress
import logging
import math
import time
from collections.abc import Callable

import limits
from limits.aio.storage import MemoryStorage, Storage
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


class RateLimiter:
    """Counts requests and raises :class:`RateLimitedError` once a limit is spent."""

    def __init__(
        self,
        config: LimitsConfig,
        *,
        storage: Storage | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._per_subject = limits.parse_many(config.per_subject)
        self._per_address = limits.parse_many(config.per_address)
        self._fail_open = config.on_storage_error == "allow"
        self._strategy = SlidingWindowCounterRateLimiter(
            storage if storage is not None else _storage(config.storage_uri)
        )
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

    async def _hit(
        self, items: list[limits.RateLimitItem], scope: str, name: str
    ) -> None:
        for item in items:
            try:
                allowed = await self._strategy.hit(item, "pgf", scope, name)
                if allowed:
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
