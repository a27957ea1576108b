"""Several server processes for one gateway (``server.workers`` above 1).

One Python process answers on at most one core. With ``workers = N`` the main
process forks N workers before it starts any event loop; each binds the API's
address with SO_REUSEPORT (the kernel spreads connections over them), and has
its own event loop, database pool and schema cache. The main process serves
the private listener itself: ``/metrics`` sums what each worker reports over a
pipe every second, and ``/health`` asks the database with a connection of its
own and says how many workers reported lately.

When one worker exits, the main process stops the others and exits with that
worker's code, so the service manager restarts the gateway as a whole rather
than leaving it running with fewer workers than configured. SIGTERM or SIGINT
stop every worker gracefully.

Rate-limit counters are shared by the workers: with ``memory://`` the main
process creates them in shared memory before it forks
(:mod:`.sharedcounters`), otherwise they live in the Redis the URI names.
Counted per process, a client could spend its limit once in each worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from typing import Any

import uvloop

from .app import connection_string, create_apps
from .config import ConfigError, GatewayConfig
from .database import Database
from .metrics import Metrics, metrics_app
from .servers import private_server, public_listener, public_server
from .sharedcounters import SharedCounterStorage

__all__ = ["run_workers"]

logger = logging.getLogger("pgfortress_gateway")

REPORT_SECONDS = 1.0
# A worker that has not reported for this long counts as not serving.
STALE_SECONDS = 5.0


def run_workers(config: GatewayConfig) -> int:
    """Fork ``config.server.workers`` workers and watch them; the exit code."""
    children: dict[int, int] = {}
    counters = shared_counters(config)
    for _ in range(config.server.workers):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            for other in children.values():
                os.close(other)
            os._exit(_worker(config, write_end, counters))
        os.close(write_end)
        children[pid] = read_end
    logger.info("started %d workers", len(children))
    supervisor = _Supervisor(config, children)
    try:
        # asyncio's own loop: uvloop keeps SIGCHLD for itself, and the main
        # process carries no traffic that would need uvloop's speed.
        return asyncio.run(supervisor.run())
    finally:
        supervisor.terminate_all()


def shared_counters(config: GatewayConfig) -> SharedCounterStorage | None:
    """Counters in memory all workers see, unless they are kept in Redis."""
    scheme = config.limits.storage_uri.partition("://")[0].removeprefix("async+")
    return SharedCounterStorage() if scheme == "memory" else None


def _worker(
    config: GatewayConfig, report: int, counters: SharedCounterStorage | None
) -> int:
    code = 1
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            code = runner.run(_serve_worker(config, report, counters))
    except ConfigError as error:
        print(f"pgfortress-gateway: {error}", file=sys.stderr)
        code = 2
    except SystemExit as stop:
        # uvicorn exits with 3 when the application cannot start (the
        # database does not answer): the main process passes that code on.
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
    finally:
        logging.shutdown()
    return code


async def _serve_worker(
    config: GatewayConfig, report: int, counters: SharedCounterStorage | None
) -> int:
    api, _ = create_apps(config, counters=counters)
    metrics: Metrics = api.state.gateway.metrics
    server = public_server(config.server, api)
    os.set_blocking(report, False)

    async def send_reports() -> None:
        while True:
            await asyncio.sleep(REPORT_SECONDS)
            line = json.dumps(metrics.snapshot()).encode() + b"\n"
            # A full pipe means the main process is behind; the next will do.
            with contextlib.suppress(BlockingIOError):
                os.write(report, line)

    reporter = asyncio.create_task(send_reports())
    try:
        await server.serve(sockets=[public_listener(config.server)])
    finally:
        reporter.cancel()
    # 3 is uvicorn's own "could not start" code: the unit's logs say why.
    return 0 if server.started else 3


class _Supervisor:
    """The main process: the private listener, the reports, the workers' fate."""

    def __init__(self, config: GatewayConfig, children: dict[int, int]) -> None:
        self.config = config
        self.children = dict(children)
        self.reports: dict[int, dict[str, Any]] = {}
        self.reported_at: dict[int, float] = {}
        self.partial: dict[int, bytes] = {}
        self.started = time.time()
        self.exit_code = 0
        self.stopping = False
        self.done = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for pid, fd in self.children.items():
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._read_report, pid, fd)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        for stop in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(stop, self._stop, 0)
        self._reap()  # a worker may have ended before the handler was set

        db = self.config.database
        database = Database(
            connection_string(self.config),
            min_size=0,
            max_size=1,
            timeout=float(db.connect_timeout),
        )
        await database.open()
        app = metrics_app(self.summed, database.healthy, self.workers_health)
        private = private_server(self.config.server, app)
        listener = asyncio.create_task(private.serve())
        try:
            await self.done.wait()
        finally:
            private.should_exit = True
            await listener
            await database.close()
        return self.exit_code

    def summed(self) -> Metrics:
        total = Metrics()
        total.started = self.started
        for snapshot in self.reports.values():
            total.add(snapshot)
        return total

    def workers_health(self) -> tuple[dict[str, Any], bool]:
        now = time.monotonic()
        fresh = sum(1 for at in self.reported_at.values() if now - at < STALE_SECONDS)
        expected = self.config.server.workers
        return {"workers": f"{fresh} of {expected}"}, fresh == expected

    def _read_report(self, pid: int, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
            return
        lines = (self.partial.pop(pid, b"") + data).split(b"\n")
        self.partial[pid] = lines.pop()
        if lines:  # reports are running totals: the newest one is enough
            self.reports[pid] = json.loads(lines[-1])
            self.reported_at[pid] = time.monotonic()

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            fd = self.children.pop(pid, None)
            if fd is not None:
                asyncio.get_running_loop().remove_reader(fd)
                os.close(fd)
            self.reports.pop(pid, None)
            self.reported_at.pop(pid, None)
            if not self.stopping:
                logger.error(
                    "worker %d exited with code %d; stopping the others", pid, code
                )
                self._stop(code if code != 0 else 1)
        if not self.children:
            self.done.set()

    def _stop(self, code: int) -> None:
        if not self.stopping:
            self.stopping = True
            self.exit_code = code
        self.terminate_all()
        if not self.children:
            self.done.set()

    def terminate_all(self) -> None:
        """Ask every worker still running to stop (SIGTERM: graceful)."""
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
