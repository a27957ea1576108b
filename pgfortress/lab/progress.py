"""Step-by-step output of lab commands, each line stamped with elapsed time.

Lab commands talk to the person at the terminal on stdout; details that only
matter when something goes wrong go to the package logger at debug level.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Prints ``[  12.3s] message`` lines, safely from several threads."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def say(self, message: str) -> None:
        stream = self._stream or sys.stdout
        with self._lock:
            print(f"[{self.elapsed():7.1f}s] {message}", file=stream, flush=True)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Announce a step, then report how long it took."""
        self.say(f"{message} ...")
        began = time.monotonic()
        yield
        self.say(f"{message}: done in {time.monotonic() - began:.1f}s")
