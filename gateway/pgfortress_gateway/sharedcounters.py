"""Rate-limit counters in memory shared by the worker processes of one host.

With ``server.workers`` above 1 and ``limits.storage_uri = memory://``, the
main process creates one :class:`SharedCounterStorage` before it forks the
workers; each worker counts in the same memory, so a client spends its limit
once on the host, not once per worker. A Redis is only needed when several
gateway *hosts* share their counters.

The store is a ``limits`` storage for the sliding-window-counter strategy the
gateway uses (see :mod:`.ratelimit`), and answers like ``limits``' own memory
store: windows start at multiples of the limit's period, and a hit is allowed
while ``previous * (time left in the window / period) + current`` stays within
the limit.

Layout: a fixed table of ``slots`` entries in an anonymous shared mapping,
each holding a keyed BLAKE2b digest of the counter's name, its period, its
window number and the counts of that window and of the one before. A name
looks at ``PROBES`` consecutive slots from the one its digest picks; a slot
whose counts have both expired is free for another name. The digest is keyed
with a secret drawn at start-up, so a client cannot choose names that crowd
into the same slots. When all of a name's slots hold live counters of other
names, the check fails as a store failure, and ``limits.on_storage_error``
decides (deny by default: 503). The default table holds 65 536 counters: with
the default limits that is about 30 000 distinct addresses and subjects seen
within two minutes.

A cross-process lock guards every read-modify-write, and is held only for
those few microseconds, never across an ``await``. A worker that died holding
it would block the others; the main process then stops and restarts the
whole gateway anyway (see :mod:`.workers`), and a wait longer than
``LOCK_SECONDS`` fails the check like any store failure.
"""

from __future__ import annotations

import hashlib
import math
import mmap
import multiprocessing
import secrets
import struct
import time
from collections.abc import Callable
from multiprocessing.synchronize import Lock

from limits.aio.storage import SlidingWindowCounterSupport, Storage

__all__ = ["CountersUnavailableError", "SharedCounterStorage"]

DEFAULT_SLOTS = 1 << 16
PROBES = 8
LOCK_SECONDS = 1.0
# digest, period in seconds, window number, current count, previous count
_SLOT = struct.Struct("<16sqqqq")
_EMPTY = bytes(16)


class CountersUnavailableError(RuntimeError):
    """The shared counters cannot count this request (full, or lock timeout)."""


class SharedCounterStorage(Storage, SlidingWindowCounterSupport):
    """A ``limits`` async storage in memory shared across ``fork``."""

    STORAGE_SCHEME = None  # created by the gateway itself, never from a URI

    def __init__(
        self,
        slots: int = DEFAULT_SLOTS,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._slots = slots
        self._clock = clock
        self._table = mmap.mmap(-1, slots * _SLOT.size)  # MAP_SHARED: kept on fork
        self._lock = multiprocessing.get_context("fork").Lock()
        self._key = secrets.token_bytes(32)

    @property
    def base_exceptions(self) -> type[Exception]:
        return CountersUnavailableError

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        if amount > limit:
            return False
        now = self._clock()
        with self._locked():
            offset, digest, window, current, previous = self._find(key, expiry, now)
            weighted = previous * _left(now, expiry) / expiry + current
            if math.floor(weighted) + amount > limit:
                return False
            self._write(offset, digest, expiry, window, current + amount, previous)
            return True

    async def get_sliding_window(
        self, key: str, expiry: int
    ) -> tuple[int, float, int, float]:
        now = self._clock()
        with self._locked():
            _, _, _, current, previous = self._find(key, expiry, now)
        left = _left(now, expiry)
        return previous, (left if previous else 0.0), current, left + expiry

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        await self.clear(key)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """A fixed-window count (the strategy in use never calls it)."""
        now = self._clock()
        with self._locked():
            offset, digest, window, current, previous = self._find(key, expiry, now)
            self._write(offset, digest, expiry, window, current + amount, previous)
        return current + amount

    async def get(self, key: str) -> int:
        with self._locked():
            found = self._lookup(self._digest(key))
            if found is None:
                return 0
            _, period, window, current, _ = _SLOT.unpack_from(self._table, found)
        return current if window == _window(self._clock(), period) else 0

    async def get_expiry(self, key: str) -> float:
        with self._locked():
            found = self._lookup(self._digest(key))
            period = 0 if found is None else _SLOT.unpack_from(self._table, found)[1]
        now = self._clock()
        return now + (_left(now, period) if period else 0.0)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        with self._locked():
            used = sum(
                1
                for n in range(self._slots)
                if self._table[n * _SLOT.size : n * _SLOT.size + 16] != _EMPTY
            )
            self._table.seek(0)
            self._table.write(bytes(len(self._table)))
        return used

    async def clear(self, key: str) -> None:
        with self._locked():
            found = self._lookup(self._digest(key))
            if found is not None:
                _SLOT.pack_into(self._table, found, _EMPTY, 0, 0, 0, 0)

    def _locked(self) -> _Held:
        return _Held(self._lock)

    def _digest(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode(), digest_size=16, key=self._key).digest()

    def _offsets(self, digest: bytes) -> list[int]:
        first = int.from_bytes(digest[:8], "little") % self._slots
        return [((first + n) % self._slots) * _SLOT.size for n in range(PROBES)]

    def _lookup(self, digest: bytes) -> int | None:
        table = self._table
        for offset in self._offsets(digest):
            if table[offset : offset + 16] == digest:
                return offset
        return None

    def _find(
        self, key: str, expiry: int, now: float
    ) -> tuple[int, bytes, int, int, int]:
        """The slot of ``key`` (free, if it has none), its digest, the window
        of ``now``, and the current and previous counts rolled to that window."""
        digest = self._digest(key)
        table = self._table
        free: int | None = None
        this = _window(now, expiry)
        for offset in self._offsets(digest):
            stored, period, window, current, previous = _SLOT.unpack_from(table, offset)
            if stored == digest:
                if window == this:
                    return offset, digest, this, current, previous
                return offset, digest, this, 0, (current if window == this - 1 else 0)
            if free is None and (stored == _EMPTY or window < _window(now, period) - 1):
                free = offset
        if free is None:
            raise CountersUnavailableError("the shared rate-limit counters are full")
        return free, digest, this, 0, 0

    def _write(self, offset: int, digest: bytes, *fields: int) -> None:
        """``fields``: period, window, current count, previous count."""
        _SLOT.pack_into(self._table, offset, digest, *fields)


def _window(now: float, period: int) -> int:
    return int(now // period) if period else 0


def _left(now: float, period: int) -> float:
    """Seconds until the current window of ``period`` ends."""
    return period - (now % period)


class _Held:
    """The cross-process lock, waited for at most ``LOCK_SECONDS``."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=LOCK_SECONDS):
            raise CountersUnavailableError("the shared rate-limit counters are busy")

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
