"""The lab's apt proxy: one apt-cacher-ng per lab, on the bridge address.

Hosts have no route out; apt on them reaches the Debian mirror only through
this proxy. It forwards solely to the mirrors the machine's own sources name
(``ForceManaged`` with one ``Remap`` rule per mirror URI), so the hosts cannot
use it to reach anywhere else. Its cache lives under the lab cache, one
directory per lab name, so rebuilding a lab does not download again and two
proxies never write to the same cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pgfortress._logging import logger
from pgfortress.errors import LabError

from . import procs
from .sources import AptSource

__all__ = ["PORT", "ProxyPaths", "is_serving", "render_acng_conf", "start"]

PORT = 3142
SUPPORT_DIR = Path("/usr/lib/apt-cacher-ng")
_START_TIMEOUT = 20.0
_ATTEMPTS = 3
_BIND_FAILED = "Couldn't bind"


@dataclass(frozen=True)
class ProxyPaths:
    """Where one lab's proxy keeps its configuration, cache and logs."""

    conf_dir: Path
    cache_dir: Path

    @property
    def conf_file(self) -> Path:
        return self.conf_dir / "acng.conf"

    @property
    def log_dir(self) -> Path:
        return self.conf_dir / "log"

    @property
    def console_log(self) -> Path:
        return self.conf_dir / "console.log"


def render_acng_conf(
    paths: ProxyPaths, bind_address: str, sources: Iterable[AptSource]
) -> str:
    """``acng.conf`` for ``apt-cacher-ng -c <conf_dir>``."""
    mirrors = sorted({source.uri.rstrip("/") for source in sources})
    lines = [
        "# Written by pgfortress lab.",
        f"CacheDir: {paths.cache_dir}",
        f"LogDir: {paths.log_dir}",
        f"SupportDir: {SUPPORT_DIR}",
        f"Port: {PORT}",
        f"BindAddress: {bind_address}",
        f"PidFile: {paths.conf_dir / 'pid'}",
        f"SocketPath: {paths.conf_dir / 'socket'}",
        # In the foreground the pid we start is the proxy's own, to record.
        "ForeGround: 1",
        "ExThreshold: 4",
        # Only the remapped mirrors below are served; no CONNECT tunnels, no
        # bug-tracker forwarding.
        "ForceManaged: 1",
        "PassThroughPattern: ^$",
        "ForwardBtsSoap: 0",
        # A mirror that stops answering is dropped after 20 s and asked again
        # (up to five times), so a stall upstream never holds apt for long.
        "NetworkTimeout: 20",
        "DlMaxRetries: 5",
    ]
    for index, uri in enumerate(mirrors):
        parts = urlsplit(uri)
        lines.append(f"Remap-pgf{index}: {parts.netloc}{parts.path} ; {uri}/")
    return "\n".join(lines) + "\n"


def start(
    paths: ProxyPaths, run_dir: Path, bind_address: str, sources: Iterable[AptSource]
) -> procs.ProcessRecord:
    """Start the lab's proxy and return once it accepts connections."""
    paths.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.conf_file.write_text(render_acng_conf(paths, bind_address, sources))
    argv = ["apt-cacher-ng", "-c", str(paths.conf_dir)]
    # Seen rarely under load: the proxy is gone right after it started, with
    # nothing in its log. A second attempt has always worked, so allow three.
    for attempt in range(1, _ATTEMPTS + 1):
        pid = procs.spawn(argv, paths.console_log)
        entry = procs.record(run_dir, "apt-proxy", pid, argv)
        deadline = time.monotonic() + _START_TIMEOUT
        # Liveness through our own process handle: the recorded-identity check
        # has been seen to answer "gone" for a proxy that was running.
        while time.monotonic() < deadline and procs.running(pid):
            if procs.listens_on(pid, bind_address, PORT):
                return entry
            # apt-cacher-ng stays up after failing to bind; no point waiting.
            if _BIND_FAILED in _tail(paths.console_log):
                break
            time.sleep(0.1)
        procs.kill([entry])
        procs.discard(pid)
        if _BIND_FAILED in _tail(paths.console_log):
            break
        logger.warning("apt proxy exited at once (attempt %d); starting again", attempt)
    raise LabError(
        f"apt-cacher-ng did not start listening on {bind_address}:{PORT}. If "
        f"another apt-cacher-ng (such as the system service) holds *:{PORT}, stop "
        f"it. Its own words:\n{_tail(paths.console_log)}"
        f"{_tail(paths.log_dir / 'apt-cacher.err')}"
    )


def is_serving(entry: procs.ProcessRecord, bind_address: str) -> bool:
    """True if the recorded proxy runs and owns its listening socket."""
    return procs.is_alive(entry) and procs.listens_on(entry.pid, bind_address, PORT)


def _tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "".join(text.splitlines(keepends=True)[-lines:])
