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

from pyinfra.api.command import FileUploadCommand
from pyinfra.api.operation import operation
from pyinfra.context import host
from pyinfra.facts.files import Sha256File
from pyinfra.facts.server import Groups, Users

from pgfortress.secrets import Secret

from .facts import psql_command

__all__ = ["group_member", "psql_secret_script", "secret_file", "settle_service"]

# Secret material is staged here: a root-only directory, so the file is never
# readable by others, not even between upload and chmod.
STAGING_DIR = "/run/pgfortress"


@operation()
def group_member(user: str, group: str) -> Generator[str, None, None]:
    """Make ``user`` a member of ``group``, leaving its other groups alone."""
    if group not in host.get_fact(Groups):
        yield f"groupadd --system {shlex.quote(group)}"
    details = host.get_fact(Users).get(user)
    if details is not None and group in details.get("groups", []):
        host.noop(f"{user} is already a member of {group}")
        return
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
    staged = f"{STAGING_DIR}/{hashlib.sha256(dest.encode()).hexdigest()[:16]}"
    yield f"install -d -m 0700 -o root -g root {STAGING_DIR}"
    yield FileUploadCommand(BytesIO(data), staged, remote_temp_filename=staged)
    yield (
        f"chown {shlex.quote(user)}:{shlex.quote(group)} {staged} && "
        f"chmod {mode} {staged} && mv -f {staged} {shlex.quote(dest)}"
    )


@operation()
def psql_secret_script(
    script: Secret, needed: bool, reason: str
) -> Generator[Any, None, None]:
    """Run a psql script that carries a secret, from a root-only file."""
    if not needed:
        host.noop(reason)
        return
    staged = f"{STAGING_DIR}/script.sql"
    yield f"install -d -m 0700 -o root -g root {STAGING_DIR}"
    yield FileUploadCommand(
        BytesIO(script.reveal().encode()), staged, remote_temp_filename=staged
    )
    # root opens the file and hands it to psql on stdin: postgres never needs
    # to read the staging directory.
    yield f"{psql_command('-f', '-')} < {staged}; rc=$?; rm -f {staged}; exit $rc"


@operation()
def settle_service(
    service: str, changed: bool, stale: str | None = None
) -> Generator[str, None, None]:
    """Apply changed configuration: reload, or restart if a setting needs it.

    ``pg_file_settings`` parses the files as they are now, so it tells before
    anything is signalled whether a value is invalid (stop, keep the running
    configuration) or only takes effect at a restart.
    """
    if not changed and stale is None:
        host.noop(f"{service}: configuration unchanged and applied, nothing to do")
        return
    if stale is not None:
        host.log(f"{service}: {stale}; applying it now")
    problems = psql_command("-A", "-t", "-F", " ", "-c", FILE_SETTING_ERRORS)
    needs_restart = psql_command("-A", "-t", "-c", RESTART_NEEDED)
    yield (
        f'bad="$({problems})" || exit 1; '
        'if [ -n "$bad" ]; then echo "pgfortress: PostgreSQL rejects: $bad" >&2; '
        "exit 1; fi; "
        f'if [ "$({needs_restart})" != "0" ]; then '
        f"echo 'pgfortress: a changed setting needs a restart of {service}'; "
        f"systemctl restart {service}; else systemctl reload {service}; fi"
    )


FILE_SETTING_ERRORS = (
    "SELECT sourcefile || ':' || sourceline || ' ' || coalesce(name, '') || ': ' "
    "|| error FROM pg_file_settings "
    "WHERE error IS NOT NULL AND error <> 'setting could not be applied' "
    "UNION ALL SELECT 'pg_hba.conf:' || line_number || ': ' || error "
    "FROM pg_hba_file_rules WHERE error IS NOT NULL"
)
RESTART_NEEDED = (
    "SELECT count(*) FROM pg_file_settings WHERE error = 'setting could not be applied'"
)
