"""Shared machinery of the lab tests: real hosts, real deploys, real clients.

Each test module brings up its own named lab and takes it down again, so
modules (and people) running side by side never share hosts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pgfortress.lab import LabState
from pgfortress.lab.platforms import PLATFORMS

if TYPE_CHECKING:
    from ._gateway import Gateway, GatewayPool

REPO = Path(__file__).resolve().parents[2]
# Lab names are stable so their apt caches are reused from run to run; a
# second person or CI job on the same machine sets another prefix.
PREFIX = os.environ.get("PGFORTRESS_TEST_LAB_PREFIX", "t")


def lab_name(suffix: str) -> str:
    """The name of one test module's lab, e.g. ``tpg``."""
    return f"{PREFIX}{suffix}"


BIN = Path(sys.executable).parent
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError(
            "the lab tests boot systemd-nspawn hosts and need root; run them with "
            "sudo (make test does) — they are never skipped"
        )


# A whole site deploy on a fresh lab takes two to four minutes on this machine.
DEPLOY_TIMEOUT = 900


@dataclass(frozen=True)
class DeployRun:
    """One ``pyinfra`` invocation: its output and the operations that changed."""

    returncode: int
    output: str

    @property
    def changed(self) -> list[str]:
        """Operations that ran commands on a host, as ``[host] operation``."""
        return self._per_host("Success")

    @property
    def unchanged(self) -> list[str]:
        """Operations that found nothing to do on a host."""
        return self._per_host("No changes")

    def _per_host(self, status: str) -> list[str]:
        found, operation = [], ""
        for line in self.output.splitlines():
            if line.startswith("--> Starting operation: "):
                operation = line.removeprefix("--> Starting operation: ").strip()
            match = re.match(r"^\s+(\[[^\]]+\])\s+(.*)$", line)
            if match and match.group(2).strip() == status:
                found.append(f"{match.group(1)} {operation}")
        return found

    @property
    def grand_total(self) -> tuple[int, int, int, int]:
        """pyinfra's closing totals: operations, changed, failed, unchanged."""
        for line in self.output.splitlines():
            if line.strip().startswith("Grand total"):
                cells = [0 if c == "-" else int(c) for c in line.split()[2:]]
                return cells[0], cells[1], cells[2], cells[3]
        raise AssertionError("no results table:\n" + self.output[-2000:])


def run_deploy(
    lab: LabState,
    deploy: str,
    inventory: str = "inventories/lab.py",
    extra: Sequence[str] = (),
) -> DeployRun:
    """Run pyinfra exactly as a user would, against this lab's inventory."""
    env = os.environ | {"PGFORTRESS_LAB": lab.name, "PYTHONUNBUFFERED": "1"}
    argv = [str(BIN / "pyinfra"), "-y", *extra, inventory, deploy]
    try:
        result = subprocess.run(
            argv,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEPLOY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as stuck:
        # Keep what pyinfra printed: the last operation it started is where
        # it hung, and the failing test's message shows the tail.
        printed = _text(stuck.stdout) + _text(stuck.stderr)
        return DeployRun(
            -1,
            ANSI.sub("", printed)
            + f"\n[test harness] pyinfra did not finish within {DEPLOY_TIMEOUT} s"
            " and was killed",
        )
    output = ANSI.sub("", result.stdout + result.stderr)
    return DeployRun(result.returncode, output)


def _text(captured: str | bytes | None) -> str:
    if isinstance(captured, bytes):
        return captured.decode("utf-8", "replace")
    return captured or ""


def ssh(lab: LabState, host: str, command: str, stdin: str | None = None) -> str:
    """Run a command on a lab host over SSH; fail the test if it fails."""
    result = ssh_run(lab, host, command, stdin)
    assert result.returncode == 0, f"{host}: {command}: {result.stderr}"
    return result.stdout


def ssh_run(
    lab: LabState, host: str, command: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), host, command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@dataclass(frozen=True)
class HostChecks:
    """One run of the testinfra host checks: its exit status and output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> str:
        """pytest's closing line, such as ``40 passed in 12.3s``."""
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    @property
    def output(self) -> str:
        """The end of both streams, for a failing assertion's message."""
        return self.stdout[-5000:] + self.stderr[-2000:]


def run_host_checks(
    lab: LabState,
    hosts: Sequence[str],
    checks: str = "tests/host",
    inventory: str = "inventories/lab.py",
) -> HostChecks:
    """``checks`` over SSH against lab ``hosts``, as an operator runs them."""
    result = subprocess.run(
        [
            str(BIN / "pytest"),
            checks,
            "--hosts=" + ",".join(f"ssh://{name}" for name in hosts),
            f"--ssh-config={lab.ssh_config}",
            f"--pgf-inventory={inventory}",
            *("-p", "no:cacheprovider", "-q", "-rs"),
        ],
        cwd=REPO,
        env=os.environ | {"PGFORTRESS_LAB": lab.name},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return HostChecks(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="session")
def gateway_pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayPool]:
    """The served gateways of this run, one per platform, shared by modules."""
    from ._gateway import GatewayPool  # it imports this module

    leases = {
        (item.path, str(item.callspec.params["served_gateway"]))
        for item in request.session.items
        if isinstance(item, pytest.Function) and "served_gateway" in item.fixturenames
    }
    pool = GatewayPool(
        Counter(platform for _, platform in leases),
        lambda platform: tmp_path_factory.mktemp(f"gateway-{platform}"),
    )
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="module", params=list(PLATFORMS))
def served_gateway(
    request: pytest.FixtureRequest, gateway_pool: GatewayPool
) -> Iterator[Gateway]:
    """The gateway served from here against db1 of the platform's lab
    (see :mod:`._gateway`), set up once for all the modules that use it."""
    with gateway_pool.lease(request.param) as served:
        yield served
