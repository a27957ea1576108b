"""sslyze in a virtual environment of its own, cached between runs.

sslyze pins an older ``cryptography`` than pgfortress uses, so it cannot
share the project's environment; it gets one under the machine's pgfortress
cache, installed once from the package index and reused. The install is
serialised: the TLS tests scan two servers at once, and two installs into the
same directory on a cold cache remove each other's files (and a parallel run
of the suite may reach it too).
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["SSLYZE_VERSION", "scan"]

SSLYZE_VERSION = "6.3.1"
VENV = Path("/var/cache/pgfortress/tools") / f"sslyze-{SSLYZE_VERSION}"
_INSTALLING = threading.Lock()


def _python() -> Path:
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with _INSTALLING, (VENV.parent / f"{VENV.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (VENV / ".installed").exists():
            _install(python)
    return python


def _install(python: Path) -> None:
    """A fresh virtual environment at VENV with sslyze in it."""
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"sslyze=={SSLYZE_VERSION}",
        ],
        check=True,
        timeout=600,
    )
    (VENV / ".installed").touch()


def scan(target: str, ca_file: Path, out: Path, starttls: str | None = None) -> Any:
    """Every protocol version and the certificate of ``target`` (host:port),
    validated against ``ca_file``; sslyze's JSON result for that server."""
    argv = [
        str(_python()), "-m", "sslyze", "--quiet",
        "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
        "--certinfo", f"--certinfo_ca_file={ca_file}",
        "--mozilla_config=disable", f"--json_out={out}",
        *([f"--starttls={starttls}"] if starttls else []),
        target,
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=600, capture_output=True)
    [server] = json.loads(out.read_text())["server_scan_results"]
    return server
