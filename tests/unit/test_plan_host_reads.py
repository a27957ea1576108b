"""Cheap reads of a host's state: two packages, one group, one directory, one
systemd unit, and what the running server says of itself.

Each command runs here for real in ``sh`` where it can (a stand-in ``dpkg-query``,
``getent`` and ``id`` on PATH, a temporary directory), and each parser is fed
what a host prints.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pgfortress.plan.directory import (
    DirectoryState,
    directory_changes,
    directory_state_command,
    parse_directory_state,
)
from pgfortress.plan.os_release import OS_RELEASE_COMMAND, OsRelease, parse_os_release
from pgfortress.plan.packages import installed_packages, package_state_command
from pgfortress.plan.probe import ProbeState
from pgfortress.plan.server_state import (
    NEWEST,
    ConfigState,
    ServerState,
    parse_server_state,
    server_state_queries,
)
from pgfortress.plan.service import (
    ServiceState,
    parse_service_state,
    service_state_command,
)
from pgfortress.plan.socket_group import (
    GroupMembership,
    membership_command,
    parse_membership,
)


def run(command: str, path: Path | None = None) -> list[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = f"{path}:{env['PATH']}"
    done = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.splitlines()


def stand_in(where: Path, name: str, script: str) -> None:
    (where / name).write_text("#!/bin/sh\n" + script)
    (where / name).chmod(0o755)


@pytest.mark.parametrize(
    ("lines", "installed"),
    [
        (
            ["postgresql-15 ii ", "postgresql-client-common ii "],
            {"postgresql-15"} | {"postgresql-client-common"},
        ),
        (["postgresql-15 hi ", "postgresql-client-common rc "], {"postgresql-15"}),
        (["postgresql-15 un "], set()),
        ([], set()),
    ],
)
def test_installed_packages_are_those_dpkg_calls_installed(
    lines: list[str], installed: set[str]
) -> None:
    assert installed_packages(lines) == installed


def test_an_unknown_package_is_an_answer_not_a_failed_read(tmp_path: Path) -> None:
    # dpkg-query prints what it knows and fails for the package it does not.
    stand_in(tmp_path, "dpkg-query", 'echo "postgresql-15 ii "; exit 1\n')
    command = package_state_command(["postgresql-15", "postgresql-client-common"])
    assert installed_packages(run(command, tmp_path)) == {"postgresql-15"}


def test_package_names_are_quoted() -> None:
    assert "'a b'" in package_state_command(["a b"])
    with pytest.raises(ValueError, match="at least one"):
        package_state_command([])


GETENT = 'case "$2" in pgsocket) echo "pgsocket:x:999:postgres" ;; *) exit 2 ;; esac\n'
ID = 'case "$2" in postgres) echo "postgres ssl-cert pgsocket" ;; *) exit 1 ;; esac\n'


@pytest.mark.parametrize(
    ("user", "group", "found"),
    [
        ("postgres", "pgsocket", GroupMembership(exists=True, member=True)),
        ("postgres", "other", GroupMembership(exists=False, member=False)),
        ("nobody", "pgsocket", GroupMembership(exists=True, member=False)),
        # The primary group counts as membership too.
        ("postgres", "postgres", GroupMembership(exists=False, member=True)),
    ],
)
def test_group_membership_is_read_from_getent_and_id(
    tmp_path: Path, user: str, group: str, found: GroupMembership
) -> None:
    stand_in(tmp_path, "getent", GETENT)
    stand_in(tmp_path, "id", ID)
    assert parse_membership(run(membership_command(user, group), tmp_path)) == found


def test_membership_output_must_name_the_group() -> None:
    with pytest.raises(ValueError, match="name the group"):
        parse_membership(["member-of: postgres"])


def test_a_directory_is_read_with_owner_and_mode(tmp_path: Path) -> None:
    target = tmp_path / "tls"
    assert parse_directory_state(run(directory_state_command(str(target)))) == (
        DirectoryState("absent")
    )
    target.mkdir(mode=0o750)
    target.chmod(0o750)
    state = parse_directory_state(run(directory_state_command(str(target))))
    assert (state.kind, state.mode) == ("directory", "750")
    (tmp_path / "file").write_text("")
    (tmp_path / "link").symlink_to(target)
    for other in ("file", "link"):
        command = directory_state_command(str(tmp_path / other))
        assert parse_directory_state(run(command)) == DirectoryState("other")


def test_unexpected_directory_output_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected"):
        parse_directory_state(["directory root"])


WANTED = ("root", "postgres", "750")


@pytest.mark.parametrize(
    ("state", "commands"),
    [
        (DirectoryState("directory", *WANTED), []),
        (DirectoryState("directory", "root", "postgres", "0750"), []),
        (
            DirectoryState("directory", "root", "root", "755"),
            ["chown root:postgres /t && chmod 750 /t"],
        ),
        (
            DirectoryState("absent"),
            ["mkdir -p /t && chown root:postgres /t && chmod 750 /t"],
        ),
    ],
)
def test_directory_changes_close_the_gap_only(
    state: DirectoryState, commands: list[str]
) -> None:
    assert directory_changes("/t", state, *WANTED) == commands


def test_something_else_at_the_path_is_not_replaced() -> None:
    with pytest.raises(ValueError, match="not a directory"):
        directory_changes("/t", DirectoryState("other"), *WANTED)


@pytest.mark.parametrize(
    ("lines", "state"),
    [
        (["SubState=running", "UnitFileState=enabled"], ServiceState(True, True)),
        (["SubState=dead", "UnitFileState=disabled"], ServiceState(False, False)),
        (["SubState=exited", "UnitFileState=static"], ServiceState(True, True)),
        # A unit systemd does not know: the package is not installed yet.
        (["SubState=dead", "UnitFileState="], ServiceState(False, False)),
        ([], ServiceState(False, False)),
    ],
)
def test_service_state_reads_both_properties(
    lines: list[str], state: ServiceState
) -> None:
    assert parse_service_state(lines) == state


def test_service_state_is_one_systemctl_for_a_quoted_unit(tmp_path: Path) -> None:
    stand_in(tmp_path, "systemctl", 'echo "$#:$*" >> "$0.calls"\n')
    command = service_state_command("postgresql@15-main.service; reboot")
    run(command, tmp_path)
    calls = (tmp_path / "systemctl.calls").read_text().splitlines()
    assert calls == [
        "6:show --property SubState --property UnitFileState "
        "postgresql@15-main.service; reboot"
    ]


def test_server_state_reads_config_and_probe_from_one_output() -> None:
    lines = ["1733390000|0", "t|4096:c2FsdA==|0123abcd", f"{NEWEST} 1733390100"]
    state = parse_server_state(lines)
    assert state.config == ConfigState(1733390000, 0, 1733390100)
    assert state.probe == ProbeState(True, "4096:c2FsdA==", "0123abcd")


def test_server_state_without_the_probe_role_asked_or_present() -> None:
    assert parse_server_state(["1733390000|2", f"{NEWEST} 5"]) == ServerState(
        ConfigState(1733390000, 2, 5), None
    )
    missing = parse_server_state(["1733390000|0", "||", f"{NEWEST} 5"])
    assert missing.probe is None
    assert missing.config == ConfigState(1733390000, 0, 5)


def test_a_server_that_did_not_answer_has_no_state() -> None:
    assert parse_server_state([]) == ServerState()
    # The files' times are read only when psql answered; none readable:
    state = parse_server_state(["1733390000|0", f"{NEWEST} "])
    assert state.config is None


def test_server_state_queries_are_one_row_each_in_order() -> None:
    config, probe = server_state_queries("o'brien")
    assert "pg_conf_load_time" in config
    assert "LEFT JOIN pg_authid" in probe
    assert "'o''brien'" in probe
    assert server_state_queries(None) == [config]


DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""


@pytest.mark.parametrize(
    ("text", "release"),
    [
        (DEBIAN_12, OsRelease("debian", "Debian GNU/Linux", 12)),
        (
            'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
            OsRelease("ubuntu", "Ubuntu", 24),
        ),
        # Testing and unstable carry no VERSION_ID.
        ('PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n', OsRelease("debian")),
        ("# a comment\n\nnot a pair\nID='debian'\n", OsRelease("debian")),
        ("", OsRelease()),
    ],
)
def test_os_release_gives_id_name_and_major(text: str, release: OsRelease) -> None:
    assert parse_os_release(text.splitlines()) == release


def test_os_release_is_read_from_etc_else_usr_lib() -> None:
    # One process either way; run here against this machine's own file.
    lines = run(OS_RELEASE_COMMAND)
    assert parse_os_release(lines).id is not None
