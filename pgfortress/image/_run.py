"""Running pyinfra, the audit and commands on the lab host, as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pgfortress.lab import LabState

from ._errors import ImageError

__all__ = [
    "INVENTORY",
    "AuditOutcome",
    "DeployOutcome",
    "audit",
    "deploy",
    "on_host",
    "read_junit",
    "source_commit",
]

INVENTORY = Path(__file__).with_name("lab_inventory.py")
BIN = Path(sys.executable).parent
DEPLOY_TIMEOUT = 1200
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(
    state: LabState, stage: str, work: Path, roles: str | None, role: str
) -> dict[str, str]:
    env = os.environ | {
        "PGFORTRESS_LAB": state.name,
        "PGFORTRESS_IMAGE_ROLE": role,
        "PGFORTRESS_IMAGE_STAGE": stage,
        "PGFORTRESS_IMAGE_WORK": str(work),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PGFORTRESS_DATABASE_ROLES", None)
    if roles:
        env["PGFORTRESS_DATABASE_ROLES"] = roles
    return env


@dataclass(frozen=True)
class DeployOutcome:
    """One pyinfra run: how many operations it ran and how many changed."""

    operations: int
    changed: int
    output: str


def deploy(
    state: LabState,
    deploy_file: Path,
    stage: str,
    work: Path,
    roles: str | None,
    role: str = "db",
) -> DeployOutcome:
    """``pyinfra -y <image inventory> <deploy>``; fails naming the deploy."""
    argv = [str(BIN / "pyinfra"), "-y", str(INVENTORY), str(deploy_file)]
    try:
        result = subprocess.run(
            argv,
            env=_env(state, stage, work, roles, role),
            capture_output=True,
            text=True,
            timeout=DEPLOY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ImageError(
            f"{deploy_file} on the image's host did not finish within "
            f"{DEPLOY_TIMEOUT} s"
        ) from None
    output = _ANSI.sub("", result.stdout + result.stderr)
    if result.returncode != 0:
        raise ImageError(
            f"{deploy_file} failed on the image's host (stage {stage}, exit "
            f"{result.returncode}):\n{output[-3000:]}"
        )
    for line in output.splitlines():
        if line.strip().startswith("Grand total"):
            cells = [0 if c == "-" else int(c) for c in line.split()[2:]]
            return DeployOutcome(cells[0], cells[1], output)
    raise ImageError(f"{deploy_file}: pyinfra printed no results:\n{output[-3000:]}")


@dataclass(frozen=True)
class AuditOutcome:
    """``pgfortress audit`` on the image's host: statuses per control."""

    returncode: int
    statuses: dict[str, str]
    output: str

    def failing(self) -> list[str]:
        return sorted(c for c, status in self.statuses.items() if status == "fail")

    def counts(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for status in self.statuses.values():
            counted[status] = counted.get(status, 0) + 1
        return dict(sorted(counted.items()))

    def unnamed_counts(self) -> dict[str, int]:
        """Host checks naming no control (the gateway's, the firewall's), by
        outcome, from the audit's line ``host checks naming no control: …``."""
        prefix = "host checks naming no control: "
        for line in self.output.splitlines():
            if line.startswith(prefix):
                pairs = (part.split(" ", 1) for part in line[len(prefix) :].split(", "))
                return {outcome: int(n) for n, outcome in pairs}
        return {}

    def unnamed_failures(self) -> list[str]:
        """Failed host checks that name no control, as the audit printed them."""
        return [
            line.strip()
            for line in self.output.splitlines()
            if line.startswith("  failed on ")
        ]


def audit(
    state: LabState,
    stage: str,
    work: Path,
    roles: str | None,
    junit: Path,
    html: Path,
    role: str = "db",
    hosts: tuple[str, ...] = (),
) -> AuditOutcome:
    """``pgfortress audit`` with the image inventory, as an operator runs it;
    only ``hosts`` when any are named."""
    argv = [
        str(BIN / "pgfortress"),
        "audit",
        str(INVENTORY),
        f"--junit={junit}",
        f"--html={html}",
        *(f"--host={name}" for name in hosts),
    ]
    result = subprocess.run(
        argv,
        env=_env(state, stage, work, roles, role),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1) or not junit.is_file():
        raise ImageError(
            f"pgfortress audit could not run on the image's host (exit "
            f"{result.returncode}):\n{output[-3000:]}"
        )
    return AuditOutcome(result.returncode, read_junit(junit), output)


def read_junit(path: Path) -> dict[str, str]:
    """Control id → pass, fail or the skip reason's status, from the audit's XML."""
    statuses = {}
    for case in ET.parse(path).iter("testcase"):  # noqa: S314 - the audit's own file
        control_id = case.attrib["name"].split(" ", 1)[0]
        skipped = case.find("skipped")
        if case.find("failure") is not None:
            statuses[control_id] = "fail"
        elif skipped is not None:
            statuses[control_id] = skipped.attrib.get("message", "").split(":", 1)[0]
        else:
            statuses[control_id] = "pass"
    return statuses


def on_host(
    state: LabState,
    host: str,
    command: str,
    timeout: float = 300,
    stdin: str | None = None,
) -> str:
    """Run ``command`` on a lab host over SSH; its stdout, or ImageError."""
    result = subprocess.run(
        ["ssh", "-F", str(state.ssh_config), host, command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ImageError(
            f"{host}: {command.splitlines()[0]}: exit {result.returncode}: "
            f"{result.stderr.strip()[-800:]}"
        )
    return result.stdout


def source_commit(repo: Path) -> str:
    """The clone's commit, with ``-dirty`` when its tracked files differ."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")
