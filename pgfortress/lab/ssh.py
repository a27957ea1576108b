"""SSH access to lab hosts: the lab key, and waiting until a host logs us in.

Host keys are made before boot (see :mod:`.hostroot`), so ``known_hosts`` is
complete before the first connection and every connection checks it strictly.
"""

from __future__ import annotations

import subprocess
import time

from pgfortress.errors import LabError

from ._system import run, wait_listening
from .hostroot import public_key
from .paths import LabLayout
from .state import LabState

__all__ = ["create_lab_key", "login_works", "wait_for_login"]

SSH_PORT = 22


def create_lab_key(layout: LabLayout, lab: str) -> str:
    """Make the lab's private key (mode 0600); returns its public key line."""
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"pgfortress-lab-{lab}",
            "-f",
            str(layout.ssh_key),
        ]
    )
    layout.ssh_key.chmod(0o600)
    return public_key(layout.ssh_key.with_name(layout.ssh_key.name + ".pub"))


def login_works(state: LabState, host: str, timeout: float = 15) -> bool:
    """True if ``ssh <host> true`` succeeds with the lab key and strict keys."""
    try:
        result = subprocess.run(
            state.ssh_argv(host, "true"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def wait_for_login(state: LabState, host: str, timeout: float) -> None:
    """Return once ``host`` accepts an SSH login; LabError after ``timeout``."""
    deadline = time.monotonic() + timeout
    wait_listening(state.hosts[host].address, SSH_PORT, timeout)
    while not login_works(state, host):
        if time.monotonic() > deadline:
            raise LabError(f"host {host} accepts TCP on port 22 but no SSH login")
        time.sleep(0.5)
