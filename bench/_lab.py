"""What the lab benchmarks share: their error, commands on lab hosts, the
run's provenance and progress lines."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pgfortress.lab import LabState

__all__ = ["BenchError", "apt_install", "deploy", "run_context", "say", "ssh"]

REPO = Path(__file__).resolve().parents[1]


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
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"{host}: {command}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def say(message: str) -> None:
    """One progress line, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def deploy(state: LabState, script: str, *extra: str) -> None:
    """Run a deploy on the lab as a user would; BenchError with its tail."""
    env = os.environ | {"PGFORTRESS_LAB": state.name, "PYTHONUNBUFFERED": "1"}
    pyinfra = Path(sys.executable).parent / "pyinfra"
    argv = [str(pyinfra), "-y", *extra, "inventories/lab.py", script]
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise BenchError(f"{script} failed:\n{(result.stdout + result.stderr)[-4000:]}")


def apt_install(package: str) -> str:
    """Shell text installing a benchmark tool on a lab host.

    Services the package would start stay stopped (policy-rc.d), and a
    PostgreSQL server package creates no cluster: only its binaries are
    wanted, pgbench among them.
    """
    return (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        "mkdir -p /etc/postgresql-common; "
        "echo 'create_main_cluster = false' "
        "> /etc/postgresql-common/createcluster.conf; "
        "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; "
        "chmod 755 /usr/sbin/policy-rc.d; "
        "timeout 600 apt-get update -q >/dev/null; "
        f"apt-get install -y -q -o Dpkg::Options::=--force-confold {package} "
        ">/dev/null; "
        "rm -f /usr/sbin/policy-rc.d"
    )


def run_context() -> dict[str, Any]:
    """When, at which commit and on what machine a run was made."""
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared by all hosts",
    }
