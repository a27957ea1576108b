"""What the lab benchmarks share: their error and commands on lab hosts."""

from __future__ import annotations

import subprocess

from pgfortress.lab import LabState

__all__ = ["BenchError", "ssh"]


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which."""


def ssh(
    state: LabState,
    host: str,
    command: str,
    stdin: str | None = None,
    timeout: int = 600,
) -> str:
    """Run a shell command on a lab host; secrets travel on stdin only."""
    result = subprocess.run(
        ["ssh", "-F", str(state.ssh_config), host, "--", command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{host}: {command}: {result.stderr.strip()[-2000:]}")
    return result.stdout
