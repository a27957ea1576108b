"""Text of the files the lab writes into host roots and into the lab directory.

Everything here is pure: it takes names, addresses and keys and returns file
contents, so it is tested without booting anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "HOSTS_HEADER",
    "KnownHost",
    "render_apt_proxy",
    "render_etc_hosts",
    "render_known_hosts",
    "render_resolv_conf",
    "render_ssh_config",
    "render_sshd_dropin",
]

HOSTS_HEADER = "# Written by pgfortress lab; every lab host has the same list."

# (IPv4 address, IPv6 address) of a name.
Addresses = tuple[str, str]

# (addresses, public host key line "type base64") of a host.
KnownHost = tuple[Addresses, str]


def render_etc_hosts(gateway: Addresses, hosts: Mapping[str, Addresses]) -> str:
    """``/etc/hosts``: loopback, the machine as ``control``, then every host."""
    lines = [
        HOSTS_HEADER,
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{gateway[0]}\tcontrol",
        f"{gateway[1]}\tcontrol",
    ]
    for name, (address, address6) in hosts.items():
        lines += [f"{address}\t{name}", f"{address6}\t{name}"]
    return "\n".join(lines) + "\n"


def render_resolv_conf() -> str:
    """``/etc/resolv.conf`` that makes every DNS lookup fail within a second.

    Lab hosts have no route out, so a real nameserver would only turn each
    lookup into a long timeout; names of the lab are in ``/etc/hosts``.
    """
    return (
        "# Written by pgfortress lab: no DNS inside the lab, see /etc/hosts.\n"
        "nameserver 127.0.0.1\n"
        "options timeout:1 attempts:1\n"
    )


def render_sshd_dropin() -> str:
    """sshd drop-in: root may log in with the lab key and nothing else."""
    return (
        "# Written by pgfortress lab: key-only root login, one pinned host key.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UseDNS no\n"
    )


def render_apt_proxy(proxy_url: str) -> str:
    """apt configuration sending every download through the lab's proxy.

    A download that stalls (the mirror behind the proxy stopped sending) is
    given up after 30 s and tried again, so one slow mirror costs a deploy
    seconds rather than holding it until the caller's timeout. Requests are
    not pipelined: when the proxy closed a connection after the headers of
    one of several pipelined answers, apt-get update waited for ever.
    """
    return (
        "// Written by pgfortress lab: hosts reach the mirror only via the proxy.\n"
        f'Acquire::http::Proxy "{proxy_url}";\n'
        "// A stalled download is abandoned and tried again, not waited on.\n"
        'Acquire::http::Timeout "30";\n'
        'Acquire::Retries "5";\n'
        'Acquire::http::Pipeline-Depth "0";\n'
    )


def render_known_hosts(hosts: Mapping[str, KnownHost]) -> str:
    """``known_hosts`` pinning each host's key under its name and addresses."""
    lines = []
    for name, ((address, address6), key) in hosts.items():
        lines.append(f"{name},{address},{address6} {key}")
    return "\n".join(lines) + "\n"


def render_ssh_config(
    hosts: Mapping[str, Addresses], key: Path, known_hosts: Path
) -> str:
    """``ssh_config`` for ``ssh -F``: strict host keys, lab key only.

    The shared options apply to the host names and to their addresses, so
    tools that connect by address get the same settings.
    """
    lines = ["# Written by pgfortress lab; use as `ssh -F <this file> <host>`."]
    for name, (address, _) in hosts.items():
        lines += [f"Host {name}", f"    HostName {address}"]
    patterns: Sequence[str] = [
        item for name, pair in hosts.items() for item in (name, *pair)
    ]
    lines += [
        f"Host {' '.join(patterns)}",
        "    User root",
        f"    IdentityFile {key}",
        "    IdentitiesOnly yes",
        f"    UserKnownHostsFile {known_hosts}",
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    UpdateHostKeys no",
        "    BatchMode yes",
        "    ConnectTimeout 5",
    ]
    return "\n".join(lines) + "\n"
