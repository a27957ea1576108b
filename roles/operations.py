"""Operations pgfortress needs beyond pyinfra's own.

Each reads a fact, compares it with the wanted state, and either yields the
commands that close the gap or records in a sentence why nothing changed.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Generator
from io import BytesIO
from typing import Any
from weakref import WeakKeyDictionary

from pyinfra.api.arguments import ConnectorArguments
from pyinfra.api.command import FileUploadCommand, StringCommand
from pyinfra.api.exceptions import OperationError
from pyinfra.api.host import Host
from pyinfra.api.operation import operation
from pyinfra.api.state import State
from pyinfra.connectors.util import CommandOutput
from pyinfra.context import ctx_host, host, state
from pyinfra.facts.files import FileContents, Sha256File
from pyinfra.operations.util.files import generate_color_diff

from pgfortress.catalog_reads import conninfo
from pgfortress.plan.apply import (
    CANDIDATE_SUFFIX,
    ApplyPlan,
    FileState,
    apply_script,
    needs_candidate,
)
from pgfortress.plan.directory import DirectoryState, directory_changes
from pgfortress.plan.socket_group import GroupMembership
from pgfortress.secrets import Secret

from .facts import ConfigFileState, GroupMember, psql_command

__all__ = [
    "already_done",
    "apply_config",
    "directory",
    "group_member",
    "plain_file",
    "psql_secret_script",
    "secret_file",
    "service_running",
    "stage_config",
    "unpack_archive",
]

# Secret material is staged here: a root-only directory, so the file is never
# readable by others, not even between upload and chmod.
STAGING_DIR = "/run/pgfortress"

# Hosts on which this run has made the staging directory already, so that a
# later upload in the same run needs no command for it (operations run in
# order on a host, and one that fails stops the host). Recorded only while
# executing: running an operation's commands while preparing (change
# detection) executes nothing.
_STAGING_MADE: WeakKeyDictionary[Host, bool] = WeakKeyDictionary()


def _staging_directory() -> Generator[str, None, None]:
    """The command that makes the staging directory, unless this run did."""
    if state.is_executing:
        real: Host = ctx_host.get()  # type: ignore[no-untyped-call]
        if _STAGING_MADE.get(real):
            return
        _STAGING_MADE[real] = True
    yield f"install -d -m 0700 -o root -g root {STAGING_DIR}"


@operation()
def group_member(
    user: str, group: str, membership: GroupMembership | None = None
) -> Generator[str, None, None]:
    """Make ``user`` a member of ``group``, leaving its other groups alone.

    ``membership`` is what :class:`~roles.facts.GroupMember` found, if the
    caller read it already; without it, the operation reads it.
    """
    if membership is None:
        membership = host.get_fact(GroupMember, user=user, group=group)
    if membership.member:
        host.noop(f"{user} is already a member of {group}")
        return
    if not membership.exists:
        yield f"groupadd --system {shlex.quote(group)}"
    yield f"usermod --append --groups {shlex.quote(group)} {shlex.quote(user)}"


@operation()
def secret_file(
    dest: str, content: Secret, user: str, group: str, mode: str
) -> Generator[Any, None, None]:
    """Upload secret content without ever printing it, not even in ``--diff``.

    pyinfra's ``files.put`` shows a diff of what it changes; that is what we
    want for configuration and never for a private key.
    """
    data = content.reveal().encode()
    wanted = hashlib.sha256(data).hexdigest()
    if host.get_fact(Sha256File, path=dest) == wanted:
        host.noop(f"{dest} already holds the expected secret")
        return
    yield from _upload(data, dest, user, group, mode)


def _stage(data: bytes, key: str) -> Generator[Any, None, str]:
    """Upload ``data`` into the root-only staging directory, under a name
    derived from ``key`` (where it is going); returns the staged path."""
    staged = f"{STAGING_DIR}/{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    yield from _staging_directory()
    yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=staged)
    return staged


def _upload(
    data: bytes, dest: str, user: str, group: str, mode: str
) -> Generator[Any, None, None]:
    """Upload through the root-only staging directory, owner and mode set first."""
    staged = yield from _stage(data, dest)
    yield (
        f"chown {shlex.quote(user)}:{shlex.quote(group)} {staged} && "
        f"chmod {mode} {staged} && mv -f {staged} {shlex.quote(dest)}"
    )


@operation()
def unpack_archive(
    directory: str, archive: bytes, members: list[str], reason: str
) -> Generator[Any, None, None]:
    """Upload a tar of ``members`` and unpack it into ``directory`` (its
    members' owner and mode come with it); with no members, say ``reason``."""
    if not members:
        host.noop(reason)
        return
    staged = yield from _stage(archive, directory)
    yield (
        f"tar --extract --same-owner --same-permissions --file={staged} "
        f"--directory={shlex.quote(directory)}; rc=$?; rm -f {staged}; exit $rc"
    )


@operation()
def already_done(reason: str) -> Generator[str, None, None]:
    """Nothing to do, and why: listed like any operation, reads nothing."""
    host.noop(reason)
    yield from ()


@operation()
def plain_file(
    dest: str,
    content: str,
    user: str,
    group: str,
    mode: str,
    live: FileState,
    then: str | None = None,
) -> Generator[Any, None, None]:
    """Upload ``content`` to ``dest`` unless it is there already with this owner
    and mode; ``live`` is the file's state, read by the caller before any
    operation ran (with other facts, in one round trip). ``then`` is a command
    to run after an upload, in the same operation (one operation less for
    pyinfra to prepare on every host, where a second one would change nothing
    on most runs)."""
    data = content.encode()
    if not needs_candidate(live, data, user, group, mode):
        host.noop(f"{dest} is already as wanted")
        return
    if state.config.DIFF:
        _log_diff(dest, content, exists=live.sha256 is not None)
    yield from _upload(data, dest, user, group, mode)
    if then is not None:
        yield then


@operation()
def directory(
    path: str, user: str, group: str, mode: str, live: DirectoryState
) -> Generator[str, None, None]:
    """Make ``path`` a directory with this owner and mode; ``live`` is what
    :class:`~roles.facts.DirectoryOwnerMode` read before any operation ran."""
    if live.kind == "other":
        raise OperationError(f"{path} exists and is not a directory: move it away")
    commands = directory_changes(path, live, user, group, mode)
    if not commands:
        host.noop(f"{path} is already a directory, {user}:{group} {mode}")
        return
    yield from commands


@operation()
def service_running(
    service: str, running: bool, enabled: bool
) -> Generator[str, None, None]:
    """Start and enable a systemd ``service``, as found by the caller (pyinfra's
    ``SystemdStatus`` and ``SystemdEnabled``, read before any operation ran)."""
    if running and enabled:
        host.noop(f"{service} is running and enabled")
        return
    if not running:
        yield f"systemctl start {shlex.quote(service)}"
    if not enabled:
        yield f"systemctl enable {shlex.quote(service)}"


@operation()
def psql_secret_script(
    script: Secret,
    needed: bool,
    reason: str,
    psql: str = "psql",
    database: str = "postgres",
) -> Generator[Any, None, None]:
    """Run a psql script that carries a secret, from a root-only file, with
    ``psql`` (best the server's own, see :func:`~roles.facts.psql_command`),
    connected first to ``database``."""
    if not needed:
        host.noop(reason)
        return
    staged = f"{STAGING_DIR}/script.sql"
    yield from _staging_directory()
    yield FileUploadCommand(
        BytesIO(script.reveal().encode()), staged, remote_temp_filename=staged
    )
    # root opens the file and hands it to psql on stdin: postgres never needs
    # to read the staging directory.
    run = psql_command("-f", "-", database=conninfo(database), psql=psql)
    yield f"{run} < {staged}; rc=$?; rm -f {staged}; exit $rc"


@operation()
def stage_config(
    dest: str,
    content: str | Secret,
    user: str,
    group: str,
    mode: str,
    live: FileState | None = None,
) -> Generator[Any, None, None]:
    """Put ``content`` next to ``dest`` as a candidate, if ``dest`` differs from it.

    The live file is compared (text, owner, mode) and left alone: only
    :func:`apply_config` swaps a candidate in, once PostgreSQL accepts it. So a
    run with nothing to change uploads nothing and reports no change. A
    :class:`Secret` is never shown, not even with ``--diff``. ``live`` is the
    file's state if the caller read it already (several files in one round
    trip, before any operation ran; nothing in between may change the file);
    without it, the operation reads it.
    """
    text = content.reveal() if isinstance(content, Secret) else content
    data = text.encode()
    if live is None:
        live = host.get_fact(ConfigFileState, path=dest)
    candidate = dest + CANDIDATE_SUFFIX
    if not needs_candidate(live, data, user, group, mode):
        if live.candidate:
            # Left by a run that stopped before applying it: never apply it.
            yield f"rm -f {shlex.quote(candidate)}"
            return
        host.noop(f"{dest} is already as wanted")
        return
    if state.config.DIFF and not isinstance(content, Secret):
        _log_diff(dest, text, exists=live.sha256 is not None)
    yield from _upload(data, candidate, user, group, mode)


def _log_diff(dest: str, text: str, exists: bool) -> None:
    current = host.get_fact(FileContents, path=dest) if exists else None
    host.log(f"Will {'modify' if exists else 'create'} {dest}")
    old = [line + "\n" for line in current or []]
    for line in generate_color_diff(old, text.splitlines(keepends=True)):
        host.log(f"  {line}")


class _ReportingCommand(StringCommand):
    """A shell command whose ``pgfortress:`` lines are shown without ``-v``.

    pyinfra prints a command's output only when it fails or with ``-v``; a
    restart is worth telling every time it happens.
    """

    def execute(
        self, state: State, host: Host, connector_arguments: ConnectorArguments
    ) -> tuple[bool, CommandOutput]:
        status, output = super().execute(state, host, connector_arguments)
        if status and not state.print_output:
            for line in output.stdout_lines:
                if line.startswith("pgfortress: "):
                    host.log(line)
        return status, output


@operation()
def apply_config(
    plan: ApplyPlan, changed: bool, stale: str | None = None
) -> Generator[Any, None, None]:
    """Swap staged candidates in, have PostgreSQL check them, apply, verify.

    In one shell step on the host: the live files are kept as
    ``<file>.pgf-previous`` and the candidates renamed into place; PostgreSQL
    reports through ``pg_file_settings`` and ``pg_hba_file_rules`` whether it
    accepts them. If not, the previous files go back before anything is
    signalled. If so, the server is reloaded, or restarted when a changed
    setting needs it; then the administrator must connect over the socket and
    TLS must present the deployed certificate, or the previous files go back
    and the server is reloaded or restarted with them. See
    ``pgfortress/plan/apply_config.sh``.
    """
    service = plan.service
    if not changed and stale is None:
        host.noop(f"{service}: configuration unchanged and applied, nothing to do")
        return
    if stale is not None:
        host.log(f"{service}: {stale}; applying it now")
    yield _ReportingCommand(apply_script(plan))
