"""Apply the host firewall: load with a dead-man switch, confirm, or roll back.

The ruleset is staged as ``<rules file>.pgf-candidate`` (by the role) and
then handled by one shell script on the host (``firewall_apply.sh``), in
three modes:

``load``
    ``nft -c`` checks the candidate alone and inside the boot configuration
    (``/etc/nftables.conf`` with the include line); the running table is
    kept; a transient systemd timer is armed to put it back after
    ``firewall_confirm_seconds``; the candidate is loaded in one nft
    transaction. No file the boot reads has changed yet.
``confirm``
    Run once the deploy has opened a new connection to sshd through the new
    rules: the timer is stopped, the candidate moves into place, the include
    line is added to ``/etc/nftables.conf``, the whole boot configuration is
    checked with ``nft -c``, the nftables service is enabled and a digest of
    the running table is recorded.
``rollback``
    The running table goes back to what it was, at once.

A host that reboots between load and confirm boots with the previous files.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .firewall import CONF_FILE, INCLUDE_LINE, RULES_FILE, TABLE

__all__ = [
    "ROLLBACK_UNIT",
    "STATE_FILE",
    "FirewallState",
    "firewall_script",
    "firewall_state_command",
    "parse_firewall_state",
    "reasons_to_apply",
]

STATE_FILE = "/var/lib/pgfortress/firewall.applied"
ROLLBACK_UNIT = "pgfortress-firewall-rollback"
_SCRIPT = Path(__file__).with_name("firewall_apply.sh")


@dataclass(frozen=True)
class FirewallState:
    """What the host says about its firewall and about the deploy's connection."""

    peer: str | None
    ssh_port: int | None
    server_address: str | None
    has_nft: bool
    included: bool
    enabled: bool
    live: str | None
    recorded: str | None


def firewall_state_command() -> str:
    """Shell that prints what :func:`parse_firewall_state` reads."""
    table = TABLE
    include = shlex.quote(INCLUDE_LINE)
    return "; ".join(
        [
            'set -- $SSH_CONNECTION; echo "peer ${1:-none} ${4:-0} ${3:-none}"',
            "if command -v nft >/dev/null; then echo nft; "
            f"if nft list table {table} >/dev/null 2>&1; then echo live "
            f"$(nft -s list table {table} | sha256sum | cut -d ' ' -f 1); fi; fi",
            f"grep -Fxq {include} {CONF_FILE} 2>/dev/null && echo included",
            "systemctl is-enabled -q nftables.service 2>/dev/null && echo enabled",
            f"[ -f {STATE_FILE} ] && sed 's/^/recorded /' {STATE_FILE}",
            "true",
        ]
    )


def parse_firewall_state(lines: Sequence[str]) -> FirewallState:
    """The output of :func:`firewall_state_command`."""
    words: dict[str, list[str]] = {}
    for line in lines:
        parts = line.split()
        if parts:
            words[parts[0]] = parts[1:]
    peer = words.get("peer", []) + ["none", "0", "none"][len(words.get("peer", [])) :]
    return FirewallState(
        peer=None if peer[0] == "none" else peer[0],
        ssh_port=int(peer[1]) if peer[1].isdigit() and peer[1] != "0" else None,
        server_address=None if peer[2] == "none" else peer[2],
        has_nft="nft" in words,
        included="included" in words,
        enabled="enabled" in words,
        live=_first(words.get("live")),
        recorded=_first(words.get("recorded")),
    )


def reasons_to_apply(state: FirewallState, staged: bool) -> list[str]:
    """Why the firewall must be loaded (again); empty when it is as wanted."""
    reasons = []
    if staged:
        reasons.append("the ruleset changed")
    if state.live is None:
        reasons.append(f"table {TABLE} is not loaded")
    elif state.live != state.recorded:
        reasons.append(f"the running table {TABLE} differs from the one last applied")
    if not state.included:
        reasons.append(f"{CONF_FILE} does not include {RULES_FILE}")
    if not state.enabled:
        reasons.append("nftables.service is not enabled")
    return reasons


def firewall_script(
    host: str, mode: Literal["load", "confirm", "rollback"], confirm_seconds: int
) -> str:
    """The shell step for ``mode``; see the module docstring."""
    values = {
        "host": host,
        "mode": mode,
        "rules_file": RULES_FILE,
        "conf_file": CONF_FILE,
        "include_line": INCLUDE_LINE,
        "state_file": STATE_FILE,
        "confirm_seconds": str(confirm_seconds),
        "unit": ROLLBACK_UNIT,
        "table": TABLE,
    }
    header = [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    return "\n".join(header) + "\n" + _SCRIPT.read_text()


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None
