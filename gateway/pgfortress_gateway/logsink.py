"""Where the gateway's log lines go: standard error, written in batches.

The audit trail is one line per request. Written one by one, each line costs
a system call and a flush; at thousands of requests a second that is a
measurable share of the gateway's CPU (docs/benchmarks.md). Lines are instead
gathered and written together once per short interval, or as soon as enough
have gathered. Outside an event loop, and at shutdown, every line is written
at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

__all__ = ["BatchedStreamHandler", "configure"]

FORMAT = "%(name)s %(levelname)s %(message)s"
_FORMATTER = logging.Formatter(FORMAT)


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes lines in batches of at most ``max_lines``."""

    def __init__(
        self, stream: TextIO, *, max_lines: int = 256, max_delay: float = 0.05
    ) -> None:
        super().__init__(stream)
        self.max_lines = max_lines
        self.max_delay = max_delay
        self._pending: list[str] = []
        self._scheduled = False

    @classmethod
    def sole_handler(
        cls, logger: logging.Logger, level: int
    ) -> BatchedStreamHandler | None:
        """The handler of this kind, formatting as :func:`configure` sets it,
        that alone would write ``logger``'s records at ``level``; None when a
        filter or any other handler (a test's capture) would see them too."""
        if logger.filters or logger.disabled:
            return None
        found: BatchedStreamHandler | None = None
        current: logging.Logger | None = logger
        while current is not None:
            for handler in current.handlers:
                if found is not None or not isinstance(handler, cls):
                    return None
                found = handler
            if not current.propagate:
                break
            current = current.parent
        if (
            found is None
            or found.formatter is not _FORMATTER
            or found.filters
            or level < found.level
        ):
            return None
        return found

    def write_info(self, logger: logging.Logger, message: str) -> None:
        """Queue an info line of ``logger``, as :meth:`emit` would write its
        record, without building the record; see :meth:`sole_handler`."""
        with self.lock:  # type: ignore[union-attr]
            level = logging.getLevelName(logging.INFO)
            self._queue(f"{logger.name} {level} {message}", urgent=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._queue(line, urgent=record.levelno >= logging.WARNING)

    def _queue(self, line: str, *, urgent: bool) -> None:
        self._pending.append(line)
        if len(self._pending) >= self.max_lines or urgent:
            self.flush()
        elif not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = True
            loop.call_later(self.max_delay, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            if not self._pending:
                return
            text = "\n".join(self._pending) + self.terminator
            self._pending.clear()
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:
                # Nothing better to do with a broken stderr than say so once.
                self.handleError(logging.makeLogRecord({"msg": "log write failed"}))


def configure(stream: TextIO) -> BatchedStreamHandler:
    """Send every log record, at info and above, to ``stream`` in batches."""
    # No record needs the process or thread ids; reading them costs a system
    # call per record on Python 3.11.
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    # Nor where in the source it was logged from (the format shows neither):
    # finding that walks the caller's frames on every record. The logging
    # HOWTO's "Optimization" section names this switch.
    logging._srcfile = None
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(_FORMATTER)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    return handler
