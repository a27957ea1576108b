"""Applying configuration: the file state, the TLS address, and the script itself.

The apply script runs here for real, in a temporary directory, with stand-ins
for the tools it calls on a host (psql through setpriv, systemctl, openssl).
The stand-ins answer from files the test writes, so each case says what
PostgreSQL would report and checks which files end up where and which
signals were sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pgfortress.plan import layout_for
from pgfortress.plan.apply import (
    ApplyPlan,
    FileState,
    apply_plan,
    apply_script,
    file_state_command,
    needs_candidate,
    parse_file_state,
    tls_check_address,
)

DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("lines", "state"),
    [
        (["absent"], FileState(None)),
        (["absent", "candidate"], FileState(None, candidate=True)),
        (
            ["postgres postgres 640", DIGEST],
            FileState(DIGEST, "postgres", "postgres", "640"),
        ),
        (
            ["root postgres 644", DIGEST, "candidate"],
            FileState(DIGEST, "root", "postgres", "644", candidate=True),
        ),
        (
            ["postgres postgres 640", f"{DIGEST}  /etc/pg hba.conf"],
            FileState(DIGEST, "postgres", "postgres", "640"),
        ),
        (
            ["postgres postgres 640", f"\\{DIGEST}  /etc/pg\\nhba.conf"],
            FileState(DIGEST, "postgres", "postgres", "640"),
        ),
    ],
)
def test_parse_file_state(lines: list[str], state: FileState) -> None:
    assert parse_file_state(lines) == state


def test_file_state_command_reads_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "pg hba.conf"
    path.write_text("local all postgres peer\n")
    path.chmod(0o640)
    (tmp_path / "pg hba.conf.pgf-candidate").write_text("x")
    output = subprocess.run(
        ["sh", "-c", file_state_command(str(path))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    state = parse_file_state(output.splitlines())
    assert state.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert state.mode == "640"
    assert state.candidate


LIVE = FileState(hashlib.sha256(b"text").hexdigest(), "postgres", "postgres", "640")


@pytest.mark.parametrize(
    ("state", "content", "owner", "mode", "needed"),
    [
        (LIVE, b"text", "postgres", "640", False),
        (LIVE, b"text", "postgres", "0640", False),
        (LIVE, b"other text", "postgres", "640", True),
        (LIVE, b"text", "root", "640", True),
        (LIVE, b"text", "postgres", "600", True),
        (FileState(None), b"text", "postgres", "640", True),
    ],
)
def test_needs_candidate(
    state: FileState, content: bytes, owner: str, mode: str, needed: bool
) -> None:
    assert needs_candidate(state, content, owner, "postgres", mode) is needed


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        (["127.0.0.1", "::1", "10.0.0.5", "fd00::5"], "10.0.0.5:5432"),
        (["127.0.0.1", "::1", "fd00::5", "10.0.0.5"], "10.0.0.5:5432"),
        (["127.0.0.1", "::1", "fd00::5"], "[fd00::5]:5432"),
        (["127.0.0.1", "::1"], "127.0.0.1:5432"),
        (["*"], "127.0.0.1:5432"),
    ],
)
def test_tls_check_address(listen: list[str], address: str) -> None:
    assert tls_check_address(listen, 5432) == address


def test_the_plan_covers_every_file_pgfortress_writes() -> None:
    layout = layout_for("db1", 12, None)
    plan = apply_plan("db1", layout, "/run/pg", 5433, ["127.0.0.1", "10.0.0.5"])
    assert plan.files == (
        "/etc/postgresql/15/main/conf.d/50-pgfortress.conf",
        "/etc/postgresql/15/main/pg_hba.conf",
        "/etc/postgresql/15/main/tls/server.crt",
        "/etc/postgresql/15/main/tls/server.key",
        "/etc/postgresql/15/main/tls/ca.crt",
    )
    assert plan.pid_file == "/var/lib/postgresql/15/main/postmaster.pid"
    assert plan.service == "postgresql@15-main"
    assert plan.tls_connect == "10.0.0.5:5433"


def test_the_script_is_valid_sh_with_quoted_values() -> None:
    layout = layout_for("db1", 12, None)
    plan = apply_plan("db'1", layout, "/run/pg", 5432, ["127.0.0.1"])
    script = apply_script(plan)
    assert "host='db'\"'\"'1'" in script
    subprocess.run(["sh", "-n", "-c", script], check=True)


def test_paths_with_whitespace_are_refused() -> None:
    layout = layout_for("db1", 12, None)
    plan = apply_plan("db1", layout, "/run/pg", 5432, ["127.0.0.1"])
    broken = replace(plan, files=("/etc/pg hba.conf",))
    with pytest.raises(ValueError, match="whitespace"):
        apply_script(broken)


# Stand-ins for the host's tools. $STUB holds what "PostgreSQL" answers:
# rejected (pg_file_settings/pg_hba_file_rules errors), start (what the server
# binary says of the files, empty if it accepts them), restart (the sentence
# of settings that need a restart), loaded (pg_conf_load_time), served (what
# openssl s_client prints: the certificate TLS presents); calls records each
# systemctl action, and pg_ctl's reload as "reload".
SETPRIV = """#!/bin/sh
for arg; do
case $arg in
data_directory) if [ -s "$STUB/start" ]; then cat "$STUB/start" >&2; exit 1; fi ;;
*/pg_ctl) exec "$STUB/systemctl" reload ;;
*pg_hba_file_rules*) cat "$STUB/rejected"; echo ;;
*"a restart"*) cat "$STUB/restart"; echo ;;
*pg_conf_load_time*) cat "$STUB/loaded"; echo ;;
esac
done
{ printf '%s' "$*" | tr '\\n' ' '; echo; } >> "$STUB/psql"
"""
SYSTEMCTL = """#!/bin/sh
echo "$1" >> "$STUB/calls"
echo $(( $(cat "$STUB/loaded") + 1 )) > "$STUB/loaded"
"""
OPENSSL = """#!/bin/sh
case $1 in
s_client) cat "$STUB/served" ;;
esac
"""


@dataclass
class Host:
    """A fake host: config files in ``etc``, stubbed tools, one apply plan."""

    root: Path

    @property
    def stub(self) -> Path:
        return self.root / "stub"

    def file(self, name: str) -> Path:
        return self.root / "etc" / name

    def answer(self, **values: str) -> None:
        for name, value in values.items():
            (self.stub / name).write_text(value)

    @property
    def calls(self) -> list[str]:
        path = self.stub / "calls"
        return path.read_text().split() if path.exists() else []

    @property
    def switched_user(self) -> list[str]:
        """The argument lists of every command run as postgres (setpriv)."""
        path = self.stub / "psql"
        return path.read_text().splitlines() if path.exists() else []

    @property
    def psql_runs(self) -> list[str]:
        """The argument lists of every psql started through setpriv."""
        path = self.stub / "psql"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line for line in lines if "/bin/psql " in line]

    def apply(self) -> subprocess.CompletedProcess[str]:
        plan = ApplyPlan(
            host="db1",
            service="postgresql@15-main",
            server_binary="/usr/lib/postgresql/15/bin/postgres",
            psql_binary="/usr/lib/postgresql/15/bin/psql",
            config_file=str(self.file("postgresql.conf")),
            pid_file=str(self.root / "postmaster.pid"),
            log_file=str(self.root / "server.log"),
            cert_file=str(self.file("server.crt")),
            files=tuple(str(self.file(n)) for n in ("pg.conf", "hba", "server.crt")),
            settings_files=(str(self.file("pg.conf")),),
            socket_dir="/run/pg",
            port=5432,
            tls_connect="10.0.0.5:5432",
        )
        env = os.environ | {
            "PATH": f"{self.stub}:{os.environ['PATH']}",
            "STUB": str(self.stub),
        }
        return subprocess.run(
            ["sh", "-c", apply_script(plan)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def fake(tmp_path: Path) -> Host:
    host = Host(tmp_path)
    host.stub.mkdir()
    for name, text in [("setpriv", SETPRIV), ("systemctl", SYSTEMCTL)]:
        (host.stub / name).write_text(text)
        (host.stub / name).chmod(0o755)
    (host.stub / "openssl").write_text(OPENSSL)
    (host.stub / "openssl").chmod(0o755)
    (host.root / "etc").mkdir()
    (host.root / "postmaster.pid").write_text("1\n/data\n0\n5432\n/run/pg\n")
    (host.root / "server.log").write_text("")
    host.file("pg.conf").write_text("old settings\n")
    host.file("hba").write_text("old rules\n")
    host.file("server.crt").write_text(pem(CERT_1))
    host.answer(rejected="", start="", restart="", loaded="100", served=pem(CERT_1))
    return host


CERT_1, CERT_2 = b"certificate one" * 9, b"certificate two" * 9


def pem(der: bytes, width: int = 64) -> str:
    """A PEM block as openssl s_client (or a certificate file) shows it."""
    text = base64.b64encode(der).decode()
    lines = [text[n : n + width] for n in range(0, len(text), width)]
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    shown = ["Server certificate", begin, *lines, end, "subject=CN = db1", ""]
    return "\n".join(shown)


def fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[n : n + 2] for n in range(0, len(digest), 2))


def stage(host: Host, name: str, text: str) -> None:
    host.file(name + ".pgf-candidate").write_text(text)


def test_an_accepted_change_is_swapped_in_and_reloaded(fake: Host) -> None:
    stage(fake, "hba", "new rules\n")
    result = fake.apply()
    assert result.returncode == 0, result.stderr
    assert fake.file("hba").read_text() == "new rules\n"
    assert fake.file("hba.pgf-previous").read_text() == "old rules\n"
    assert not fake.file("hba.pgf-candidate").exists()
    assert fake.calls == ["reload"]
    assert "pgfortress: reloading: no changed setting needs a restart" in result.stdout
    assert "pgfortress: verified: postgres connects over /run/pg" in result.stdout


def test_a_change_costs_two_psql_processes(fake: Host) -> None:
    # The load time and both checks after the swap in one; the admin after
    # the reload (the stand-in server has read its files at once).
    stage(fake, "hba", "new rules\n")
    assert fake.apply().returncode == 0
    checks, admin = fake.psql_runs
    assert "pg_conf_load_time" in checks
    assert "pg_hba_file_rules" in checks
    assert "a restart" in checks
    assert "pg_hba_file_rules" not in admin


def test_an_unreachable_server_gets_the_previous_files_back(fake: Host) -> None:
    stage(fake, "hba", "new rules\n")
    (fake.stub / "setpriv").write_text(
        "#!/bin/sh\necho 'could not connect to server' >&2; exit 2\n"
    )
    result = fake.apply()
    assert result.returncode == 1
    assert "cannot reach PostgreSQL over /run/pg to check the new files" in (
        result.stderr
    )
    assert "nothing was reloaded" in result.stderr
    assert fake.file("hba").read_text() == "old rules\n"
    assert fake.file("hba.pgf-rejected").read_text() == "new rules\n"
    assert fake.calls == []


def test_the_running_port_and_socket_come_from_the_pid_file(fake: Host) -> None:
    (fake.root / "postmaster.pid").write_text("1\n/data\n0\n6543\n/run/other\n")
    stage(fake, "hba", "new rules\n")
    assert fake.apply().returncode == 0
    checks = fake.psql_runs[0]
    assert "-h /run/other -p 6543" in checks


def test_a_rejected_change_never_reaches_a_signal(fake: Host) -> None:
    stage(fake, "hba", "hostssl all all 10.0.0.0/8 scram-sha-257\n")
    stage(fake, "pg.conf", "new settings\n")
    fake.answer(rejected='hba:1: invalid authentication method "scram-sha-257"')
    result = fake.apply()
    assert result.returncode == 1
    assert fake.calls == []
    assert fake.file("hba").read_text() == "old rules\n"
    assert fake.file("pg.conf").read_text() == "old settings\n"
    assert "scram-sha-257" in fake.file("hba.pgf-rejected").read_text()
    assert result.stderr.startswith("pgfortress: db1: PostgreSQL rejects the new files")
    assert 'invalid authentication method "scram-sha-257"' in result.stderr
    assert "pg.conf.pgf-rejected hba.pgf-rejected" in result.stderr


def test_a_value_the_server_binary_refuses_is_rejected(fake: Host) -> None:
    stage(fake, "pg.conf", "max_connections = many\n")
    fake.answer(
        restart="max_connections needs a restart",
        start=(
            '2026-01-01 UTC [7] LOG:  invalid value for parameter "max_connections"'
            ': "many"\n2026-01-01 UTC [7] FATAL:  configuration file "pg.conf" '
            "contains errors\n"
        ),
    )
    result = fake.apply()
    assert result.returncode == 1
    assert fake.calls == []
    assert fake.file("pg.conf").read_text() == "old settings\n"
    assert (
        "PostgreSQL rejects the new files: invalid value for parameter "
        '"max_connections": "many"; configuration file "pg.conf" contains errors; '
        "nothing was reloaded"
    ) in result.stderr


def test_a_new_file_that_is_rejected_is_removed(fake: Host) -> None:
    fake.file("pg.conf").unlink()
    stage(fake, "pg.conf", "max_connections = lots\n")
    fake.answer(rejected="pg.conf:1: max_connections: invalid value")
    assert fake.apply().returncode == 1
    assert not fake.file("pg.conf").exists()
    assert fake.file("pg.conf.pgf-rejected").exists()


def test_a_setting_that_needs_a_restart_restarts_once(fake: Host) -> None:
    stage(fake, "pg.conf", "max_connections = 50\n")
    fake.answer(restart="max_connections needs a restart")
    result = fake.apply()
    assert result.returncode == 0, result.stderr
    assert fake.calls == ["restart"]
    assert "pgfortress: restarting: max_connections needs a restart" in result.stdout


def test_a_failed_check_after_the_reload_rolls_back(fake: Host) -> None:
    stage(fake, "server.crt", pem(CERT_2))
    result = fake.apply()
    assert result.returncode == 1
    assert fake.calls == ["reload", "reload"]
    assert fake.file("server.crt").read_text() == pem(CERT_1)
    assert fake.file("server.crt.pgf-rejected").read_text() == pem(CERT_2)
    assert f"presents the certificate {fingerprint(CERT_1)}, but" in result.stderr
    assert f"holds {fingerprint(CERT_2)}" in result.stderr
    assert "PostgreSQL was reloaded with the previous files" in result.stderr


def test_the_certificate_is_compared_whatever_its_line_width(fake: Host) -> None:
    # A chain file: the leaf first, wrapped otherwise than openssl shows it.
    chain = pem(CERT_2, width=76) + pem(CERT_1)
    stage(fake, "server.crt", chain)
    fake.answer(served=pem(CERT_2))
    result = fake.apply()
    assert result.returncode == 0, result.stderr
    assert f"(SHA-256 {fingerprint(CERT_2)})" in result.stdout


def test_a_file_without_a_certificate_fails_the_check(fake: Host) -> None:
    stage(fake, "server.crt", "not a certificate\n")
    result = fake.apply()
    assert result.returncode == 1
    assert "cannot read a certificate from" in result.stderr


def test_nothing_changes_when_the_server_is_not_running(fake: Host) -> None:
    (fake.root / "postmaster.pid").unlink()
    stage(fake, "hba", "new rules\n")
    result = fake.apply()
    assert result.returncode == 1
    assert "PostgreSQL is not running" in result.stderr
    assert fake.file("hba").read_text() == "old rules\n"
    assert fake.file("hba.pgf-candidate").exists()
    assert fake.calls == []


def test_the_server_binary_checks_settings_files_only(fake: Host) -> None:
    # It would refuse, but it reads settings, and only pg_hba.conf changed:
    # pg_hba_file_rules judges that file, and the binary is not started.
    fake.answer(start="FATAL:  configuration file contains errors\n")
    stage(fake, "hba", "new rules\n")
    assert fake.apply().returncode == 0
    assert not any("data_directory" in run for run in fake.switched_user)
    stage(fake, "pg.conf", "new settings\n")
    result = fake.apply()
    assert result.returncode == 1
    # What the binary said: it ran for the settings file.
    assert "configuration file contains errors" in result.stderr


def test_a_stale_server_has_its_files_on_disk_checked_by_the_binary(
    fake: Host,
) -> None:
    # Nothing staged: the files on disk are what the reload would apply.
    assert fake.apply().returncode == 0
    assert any("data_directory" in run for run in fake.switched_user)


def test_a_restart_is_checked_by_the_binary_whatever_file_changed(
    fake: Host,
) -> None:
    # A restart-only value on disk the server has not read (a hand edit, or
    # an earlier run's): pg_file_settings only says it needs a restart, and a
    # pg_hba.conf change would restart the server into a value it refuses.
    fake.answer(
        restart="shared_buffers needs a restart",
        start='FATAL:  invalid value for parameter "shared_buffers": "lots"\n',
    )
    stage(fake, "hba", "new rules\n")
    result = fake.apply()
    assert result.returncode == 1
    assert 'invalid value for parameter "shared_buffers"' in result.stderr
    assert fake.file("hba").read_text() == "old rules\n"
    assert fake.calls == []
