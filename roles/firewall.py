"""Provisioning role: an nftables host firewall rendered from the inventory's policy.

Inventory data read (docs/reference/firewall.md has every key):

``firewall_admin_networks`` (required)
    Networks SSH comes from; they also reach PostgreSQL's port.
``firewall_ssh_port`` (22), ``firewall_confirm_seconds`` (60)
    sshd's port; how long a new ruleset waits for the deploy to confirm it.
``firewall_postgres_networks``, ``firewall_redis_networks``, ``firewall_allow``
    Override the derived clients of PostgreSQL and Redis; open extra ports.
``postgres_listen``/``postgres_port``/``postgres_hba``, ``gateway_listen``/
``gateway_port``/``gateway_allowed_networks``, ``redis_listen``/``redis_port``
    Which services the host runs and who may reach them; Redis's clients are
    the inventory's gateways whose ``gateway_limits.redis_host`` is this host.

Before anything changes: the policy is validated, and the host is asked
where the deploy connects from (``SSH_CONNECTION``); a policy whose SSH rule
would not admit that address and port is refused.

What changes on the host: the ``nftables`` package; ``/etc/nftables.d/
pgfortress.nft`` (0644 root), which replaces ``table inet pgfortress`` and
no other table; an include line at the end of ``/etc/nftables.conf``
(everything else in it is kept); ``nftables.service`` enabled, so the rules
come back at boot and with ``systemctl restart nftables``. A new ruleset is
staged, checked with ``nft -c`` alone and with the boot configuration,
loaded with a rollback timer armed, and confirmed only once a new TCP
connection from this machine gets sshd's greeting; otherwise the previous
table is put back at once, or by the timer if the deploy lost the host. See
``pgfortress/plan/firewall_apply.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Generator, Iterable
from typing import Any

from pyinfra import logger
from pyinfra.api.command import StringCommand
from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError, OperationError
from pyinfra.api.facts import FactBase
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, files, python

from pgfortress.errors import PgFortressError, SpecError
from pgfortress.plan.firewall import RULES_FILE, lockout_problem, render_nftables
from pgfortress.plan.firewall_apply import (
    FirewallState,
    firewall_script,
    firewall_state_command,
    parse_firewall_state,
    reasons_to_apply,
)
from pgfortress.spec.firewall import (
    FirewallHostSpec,
    firewall_from_host_data,
    firewall_warnings,
)

from .operations import _ReportingCommand, stage_config
from .package_lists import refresh_package_lists

__all__ = ["FirewallFacts", "firewall", "firewall_spec", "stage_and_apply"]


class FirewallFacts(FactBase[FirewallState]):
    """The deploy's SSH peer and the firewall's state on the host, in one round trip."""

    def command(self) -> str:
        return firewall_state_command()

    def process(self, output: Iterable[str]) -> FirewallState:
        return parse_firewall_state(list(output))


@deploy("Host firewall (nftables)")
def firewall() -> None:
    spec, state = firewall_spec()
    stage_and_apply(spec, state, render_nftables(spec))


def firewall_spec() -> tuple[FirewallHostSpec, FirewallState]:
    """Validate this host's policy and refuse one that locks the deploy out.

    Raises pyinfra's ``DeployError`` naming the host and the key, before any
    change on any host.
    """
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        spec = firewall_from_host_data(host.name, data, _redis_clients(data))
        state: FirewallState = host.get_fact(FirewallFacts)
        if state.peer is None or state.ssh_port is None:
            raise SpecError(
                f"host {host.name}: cannot tell where the deploy connects from "
                "(SSH_CONNECTION is not set, as under sudo): pgfortress will not "
                "install a firewall it cannot prove keeps the deploy's way in; "
                "connect as root over SSH"
            )
        problem = lockout_problem(spec, state.peer, state.ssh_port)
        if problem is not None:
            raise SpecError(f"host {host.name}: {problem}")
    except PgFortressError as error:
        raise DeployError(str(error)) from error
    for warning in firewall_warnings(spec, data):
        host.log(
            f"pgfortress: warning: host {host.name}: firewall: {warning}",
            log_func=logger.warning,
        )
    return spec, state


def stage_and_apply(spec: FirewallHostSpec, state: FirewallState, text: str) -> None:
    """Stage ``text`` as the ruleset, then load, prove and confirm it, or roll back."""
    if "nftables" not in host.get_fact(DebPackages):
        refresh_package_lists(name="Refresh package lists")
    apt.packages(name="nftables", packages=["nftables"], no_recommends=True)
    files.directory(
        name="nftables drop-in directory",
        path=RULES_FILE.rsplit("/", 1)[0],
        user="root",
        group="root",
        mode="755",
    )
    staged = stage_config(
        name="Firewall ruleset (candidate)",
        dest=RULES_FILE,
        content=text,
        user="root",
        group="root",
        mode="644",
    )
    reasons = reasons_to_apply(state, staged.changed)
    load_firewall(
        name="Load the firewall (checked, rollback armed)",
        script=firewall_script(host.name, "load", spec.confirm_seconds),
        reasons=reasons,
    )
    if reasons:
        python.call(
            name="Confirm the firewall over a new connection, or roll back",
            function=_confirm,
            spec=spec,
            address=str(host.data.get("ssh_hostname") or state.server_address),
            port=int(host.data.get("ssh_port") or state.ssh_port or spec.ssh_port),
        )


@operation()
def load_firewall(script: str, reasons: list[str]) -> Generator[Any, None, None]:
    """Check and load the ruleset with a rollback timer armed, if anything differs."""
    if not reasons:
        host.noop("the firewall is loaded, recorded, included at boot and enabled")
        return
    host.log(f"pgfortress: firewall: {'; '.join(reasons)}")
    yield _ReportingCommand(script)


def _confirm(spec: FirewallHostSpec, address: str, port: int) -> None:
    """Open a new connection to sshd; confirm on its greeting, else roll back now."""
    greeting, why = b"", ""
    try:
        with socket.create_connection((address, port), timeout=10) as conn:
            conn.settimeout(10)
            greeting = conn.recv(64)
    except OSError as error:
        why = str(error) or type(error).__name__
    if not greeting.startswith(b"SSH-"):
        rollback = firewall_script(host.name, "rollback", spec.confirm_seconds)
        host.run_shell_command(StringCommand(rollback))
        raise OperationError(
            f"host {host.name}: a new connection to {address}:{port} did not reach "
            f"sshd through the new firewall ({why or 'no SSH greeting'}); the previous "
            "firewall was put back. Check firewall_admin_networks"
        )
    confirm = firewall_script(host.name, "confirm", spec.confirm_seconds)
    status, output = host.run_shell_command(StringCommand(confirm))
    for line in output.stdout_lines:
        if line.startswith("pgfortress: "):
            host.log(line)
    if not status:
        raise OperationError(" ".join(output.stderr_lines) or "confirm failed")


def _redis_clients(data: dict[str, Any]) -> list[str]:
    """Addresses of the inventory's gateways whose Redis is this host's."""
    address = data.get("redis_listen")
    if address is None:
        return []
    clients = []
    for other in host.inventory:
        limits = other.data.get("gateway_limits") or {}
        listen = other.data.get("gateway_listen")
        if isinstance(limits, dict) and limits.get("redis_host") == address and listen:
            clients.append(str(listen))
    return clients
