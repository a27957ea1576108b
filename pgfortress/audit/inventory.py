"""Read a pyinfra inventory file, and reach its hosts the way pyinfra would.

The audit connects with OpenSSH through testinfra, so the inventory's
``ssh_*`` data becomes an ssh_config written to a private temporary file.
"""

from __future__ import annotations

import re
import runpy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import AuditError

__all__ = ["inventory_hosts", "ssh_config_text"]

_HOST_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,253}$")


def inventory_hosts(path: Path) -> dict[str, dict[str, Any]]:
    """Host name → merged data, read the way pyinfra reads an inventory file.

    Group data is merged first and host data wins; ``_groups`` lists the
    groups each host belongs to.
    """
    if not path.is_file():
        raise AuditError(
            f"inventory {path}: no such file; pass the pyinfra inventory the hosts "
            "were deployed from, such as inventories/prod.py"
        )
    hosts: dict[str, dict[str, Any]] = {}
    for name, value in runpy.run_path(str(path)).items():
        if name.startswith("_"):
            continue
        members, group_data = _as_group(value)
        for member in members:
            host_name, host_data = (member, {}) if isinstance(member, str) else member
            merged = {**hosts.get(host_name, {}), **group_data, **host_data}
            merged.setdefault("_groups", []).append(name)
            hosts[host_name] = merged
    return hosts


def _as_group(value: Any) -> tuple[list[Any], Mapping[str, Any]]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], list):
        return value[0], value[1]
    if isinstance(value, list) and all(isinstance(v, str | tuple) for v in value):
        return value, {}
    return [], {}


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# pyinfra host data → ssh_config keyword.
_KEYWORDS = {
    "ssh_hostname": "HostName",
    "ssh_user": "User",
    "ssh_port": "Port",
    "ssh_key": "IdentityFile",
    "ssh_known_hosts_file": "UserKnownHostsFile",
    "ssh_strict_host_key_checking": "StrictHostKeyChecking",
}


def ssh_config_text(hosts: Mapping[str, Mapping[str, Any]]) -> str:
    """An ssh_config with one ``Host`` block per inventory host.

    Never prompts (BatchMode), forwards no agent, and uses only the named key
    when the inventory turns key discovery off.
    """
    blocks = []
    for name, data in hosts.items():
        if not _HOST_NAME.match(name):
            raise AuditError(
                f"inventory host {name!r}: not a host name the audit can put in an "
                "ssh_config; use letters, digits, '.', '-', '_' or ':'"
            )
        lines = [f"Host {name}", "    BatchMode yes", "    ForwardAgent no"]
        for key, keyword in _KEYWORDS.items():
            if data.get(key) is None:
                continue
            value = _yes_no(data[key])
            if any(c in value for c in '\n\r"') or not value:
                raise AuditError(
                    f"inventory host {name}: {key} {value!r} cannot be written to "
                    "an ssh_config; remove line breaks and quotes"
                )
            quoted = f'"{value}"' if " " in value else value
            lines.append(f"    {keyword} {quoted}")
        if data.get("ssh_look_for_keys") is False and data.get("ssh_key"):
            lines.append("    IdentitiesOnly yes")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
