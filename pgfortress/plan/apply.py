"""Apply configuration files all or nothing: stage, swap, check, apply, verify.

A changed file is first uploaded next to its target as a *candidate*
(``<file>.pgf-candidate``); PostgreSQL reads neither that name nor
``<file>.pgf-previous`` (``conf.d`` only includes names ending in ``.conf``).
One shell script on the host then swaps the candidates in, asks PostgreSQL
whether it accepts them, reloads or restarts, checks that the administrator
still connects over the socket and that TLS presents the deployed
certificate, and puts the previous files back if any step fails.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .layout import PostgresLayout
from .listen import LOOPBACK

__all__ = [
    "CANDIDATE_SUFFIX",
    "PREVIOUS_SUFFIX",
    "REJECTED_SUFFIX",
    "ApplyPlan",
    "FileState",
    "apply_plan",
    "apply_script",
    "file_state_command",
    "needs_candidate",
    "parse_file_state",
    "tls_check_address",
]

CANDIDATE_SUFFIX = ".pgf-candidate"
PREVIOUS_SUFFIX = ".pgf-previous"
REJECTED_SUFFIX = ".pgf-rejected"

_SCRIPT = Path(__file__).with_name("apply_config.sh")


@dataclass(frozen=True)
class FileState:
    """A live configuration file as found on the host, or absent."""

    sha256: str | None
    user: str = ""
    group: str = ""
    mode: str = ""
    candidate: bool = False


def file_state_command(path: str) -> str:
    """Shell that prints what :func:`parse_file_state` reads, for one file."""
    quoted = shlex.quote(path)
    # sha256sum's line is the digest, then the path: the parser keeps the
    # first word, so no cut runs (one process less per file, on every host).
    return (
        f'f={quoted}; if [ -f "$f" ]; then stat -c \'%U %G %a\' "$f" && '
        'sha256sum "$f"; else echo absent; fi; '
        f'if [ -e "$f{CANDIDATE_SUFFIX}" ]; then echo candidate; fi'
    )


def parse_file_state(lines: Sequence[str]) -> FileState:
    """The output of :func:`file_state_command` as a :class:`FileState`."""
    words = [line.strip() for line in lines if line.strip()]
    candidate = "candidate" in words
    words = [w for w in words if w != "candidate"]
    if not words or words[0] == "absent":
        return FileState(None, candidate=candidate)
    user, group, mode = words[0].split()
    # GNU sha256sum starts the line with a backslash when the name needs escapes.
    digest = words[1].split()[0].removeprefix("\\")
    return FileState(digest, user, group, mode, candidate)


def needs_candidate(
    state: FileState, content: bytes, user: str, group: str, mode: str
) -> bool:
    """Whether the live file differs from the wanted one in text, owner or mode."""
    return (
        state.sha256 != hashlib.sha256(content).hexdigest()
        or (state.user, state.group) != (user, group)
        or int(state.mode, 8) != int(mode, 8)
    )


@dataclass(frozen=True)
class ApplyPlan:
    """What the apply script needs to know about one host's server."""

    host: str
    service: str
    server_binary: str
    psql_binary: str
    config_file: str
    pid_file: str
    log_file: str
    cert_file: str
    files: tuple[str, ...]
    socket_dir: str
    port: int
    tls_connect: str
    # Of ``files``, those holding settings (what the server binary checks).
    settings_files: tuple[str, ...]


def apply_plan(
    host: str,
    layout: PostgresLayout,
    socket_dir: str,
    port: int,
    listen: Sequence[str],
) -> ApplyPlan:
    """The plan for the files pgfortress manages in ``layout``."""
    return ApplyPlan(
        host=host,
        service=layout.service,
        server_binary=layout.server_binary,
        psql_binary=layout.psql_binary,
        config_file=layout.config_file,
        pid_file=layout.pid_file,
        log_file=layout.log_file,
        cert_file=layout.server_cert,
        files=layout.managed_files,
        socket_dir=socket_dir,
        port=port,
        tls_connect=tls_check_address(listen, port),
        settings_files=(layout.dropin_file,),
    )


def tls_check_address(listen: Sequence[str], port: int) -> str:
    """Where to test TLS: the first address clients use, as ``host:port``.

    A network address proves more than loopback, and IPv4 is tried first
    because every listen list that names an interface has one.
    """
    remote = [a for a in listen if a not in LOOPBACK and a != "*"]
    remote.sort(key=lambda a: ipaddress.ip_address(a).version)
    address = remote[0] if remote else LOOPBACK[0]
    if ipaddress.ip_address(address).version == 6:
        return f"[{address}]:{port}"
    return f"{address}:{port}"


def apply_script(plan: ApplyPlan) -> str:
    """The one shell step that swaps, checks, applies, verifies or rolls back."""
    # The script lists the files it swapped in one space-separated word list.
    if any(f.split() != [f] for f in (*plan.files, *plan.settings_files)):
        raise ValueError("configuration file paths must not contain whitespace")
    values = {
        "host": plan.host,
        "service": plan.service,
        "server_binary": plan.server_binary,
        "psql_binary": plan.psql_binary,
        "config_file": plan.config_file,
        "pid_file": plan.pid_file,
        "log_file": plan.log_file,
        "socket_dir": plan.socket_dir,
        "port": str(plan.port),
        "tls_connect": plan.tls_connect,
        "cert_file": plan.cert_file,
        "settings_files": " ".join(plan.settings_files),
    }
    header = [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    header.append(" ".join(["set --", *(shlex.quote(f) for f in plan.files)]))
    return "\n".join(header) + "\n" + _SCRIPT.read_text()
