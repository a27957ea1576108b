"""Faults on the lab: files PostgreSQL rejects, restarts, a stopped server.

One lab with one database host per platform (Debian 12 with PostgreSQL 15,
then Debian 13 with PostgreSQL 17), deployed once. Each test
breaks something on purpose through the role's own apply path (the deploys
in ``tests/lab/deploys/`` hand it a broken file the inventory validation would
have refused) or through the inventory (``--data``), checks what the server
runs and what the operator reads, and leaves the host converged again.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgfortress import tls
from pgfortress.lab import LabState
from pgfortress.lab.platforms import platform_named

from ._platform_labs import platform_lab
from .conftest import BIN, REPO, DeployRun, lab_name, run_deploy, ssh, ssh_run

pytestmark = pytest.mark.lab

# Each platform on its own lab (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("pf"), "debian13": lab_name("pf13")}
PROBE = "pgfortress_probe"
SQL = "runuser -u postgres -- env -C / psql -X -A -t -F '|' -d postgres -c"


@dataclass(frozen=True)
class Cluster:
    """Where db1's cluster lives: Debian's paths for the platform's major."""

    config: str
    service: str
    server_log: str


def cluster(lab: LabState) -> Cluster:
    major = platform_named(lab.platform).postgres_major
    return Cluster(
        f"/etc/postgresql/{major}/main",
        f"postgresql@{major}-main",
        f"/var/log/postgresql/postgresql-{major}-main.log",
    )


def _deploy(state: LabState) -> LabState:
    tls.init_ca(state.dir / "ca", f"pgfortress lab {state.name} CA")
    first = run_deploy(state, "deploys/postgres.py")
    assert first.returncode == 0, first.output[-4000:]
    return state


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def lab(request: pytest.FixtureRequest) -> Iterator[LabState]:
    # The Debian 13 lab is made while the Debian 12 tests run.
    yield from platform_lab(request, LAB_NAMES, ["db1"], _deploy)


@dataclass(frozen=True)
class ServerState:
    """What db1 runs and has on disk, read in one SSH round trip."""

    hba: str
    dropin: str
    cert: str
    candidates: int
    starts: int
    rules: str
    loaded: str
    started: str
    max_connections: str
    work_mem: str


def server_state(lab: LabState) -> ServerState:
    query = (
        "SELECT md5(string_agg(r::text, ';' ORDER BY line_number)) "
        "FROM pg_hba_file_rules r) || '|' || pg_conf_load_time() || '|' || "
        "pg_postmaster_start_time() || '|' || current_setting('max_connections') "
        "|| '|' || current_setting('work_mem')"
    )
    paths = cluster(lab)
    output = ssh(
        lab,
        "db1",
        f"cd {paths.config} && sha256sum pg_hba.conf conf.d/50-pgfortress.conf "
        "tls/server.crt | cut -c1-64 && find . -name '*.pgf-candidate' | wc -l && "
        f"grep -c 'ready to accept connections' {paths.server_log} && "
        f'{SQL} "SELECT ({query}"',
    )
    hba, dropin, cert, candidates, starts, row = output.strip().splitlines()
    rules, loaded, started, max_connections, work_mem = row.split("|")
    return ServerState(
        hba,
        dropin,
        cert,
        int(candidates),
        int(starts),
        rules,
        loaded,
        started,
        max_connections,
        work_mem,
    )


def client_connects(lab: LabState, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The probe role from this machine, over TLS with verify-full, as a client."""
    passfile = tmp_path / "pgpass"
    password = (lab.dir / "secrets" / "db1" / PROBE).read_text().strip()
    passfile.write_text(f"*:*:*:{PROBE}:{password}\n")
    passfile.chmod(0o600)
    dsn = (
        f"host={lab.hosts['db1'].address} dbname=postgres user={PROBE} "
        f"sslmode=verify-full sslrootcert={lab.dir / 'ca' / 'ca.crt'} "
        f"passfile={passfile} connect_timeout=5"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-w", dsn, "-c", "SELECT 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def converge(lab: LabState) -> DeployRun:
    """Deploy the inventory as it is, bringing db1 back to the baseline."""
    run = run_deploy(lab, "deploys/postgres.py")
    assert run.returncode == 0, run.output[-4000:]
    return run


def failure_line(run: DeployRun) -> str:
    """The one line the apply step writes when it fails."""
    lines = [line for line in run.output.splitlines() if "pgfortress: db1: " in line]
    assert len(lines) == 1, run.output[-4000:]
    return lines[0].split("pgfortress: ", 1)[1]


MAX_CONNECTIONS = ["--data", 'postgres_settings={"max_connections": 50}']
WORK_MEM = ["--data", 'postgres_settings={"work_mem": "8MB"}']


def test_a_rejected_pg_hba_conf_is_never_live(lab: LabState, tmp_path: Path) -> None:
    before = server_state(lab)

    run = run_deploy(lab, "tests/lab/deploys/broken_hba.py")

    assert run.returncode != 0
    line = failure_line(run)
    assert line.startswith("db1: PostgreSQL rejects the new files: ")
    assert re.search(
        f"{cluster(lab).config}/pg_hba.conf:[0-9]+: "
        'invalid authentication method "scram-sha-257"',
        line,
    )
    assert "nothing was reloaded" in line
    after = server_state(lab)
    assert (after.hba, after.rules) == (before.hba, before.rules)
    assert after.loaded == before.loaded, "the server was signalled"
    assert after.candidates == 0
    rejected = f"{cluster(lab).config}/pg_hba.conf.pgf-rejected"
    ssh(lab, "db1", f"grep -q scram-sha-257 {rejected}")
    assert client_connects(lab, tmp_path).returncode == 0
    assert converge(lab).changed == []


def test_a_setting_that_needs_a_restart_restarts_once(
    lab: LabState, tmp_path: Path
) -> None:
    before = server_state(lab)
    try:
        run = run_deploy(lab, "deploys/postgres.py", extra=MAX_CONNECTIONS)

        assert run.returncode == 0, run.output[-4000:]
        assert run.output.count("pgfortress: restarting: ") == 1
        assert "[db1] pgfortress: restarting: max_connections needs a restart" in (
            run.output
        )
        after = server_state(lab)
        assert after.max_connections == "50"
        assert after.started != before.started
        assert after.starts == before.starts + 1
        assert client_connects(lab, tmp_path).returncode == 0

        again = run_deploy(lab, "deploys/postgres.py", extra=MAX_CONNECTIONS)
        assert again.returncode == 0
        assert again.changed == []
        assert "restarting" not in again.output
        assert server_state(lab).started == after.started
    finally:
        converge(lab)
    assert server_state(lab).max_connections == before.max_connections


def test_a_dry_run_shows_the_settings_diff_and_changes_nothing(
    lab: LabState,
) -> None:
    before = server_state(lab)
    run = run_deploy(lab, "deploys/postgres.py", extra=["--dry", "--diff", *WORK_MEM])
    assert run.returncode == 0, run.output[-4000:]
    assert "work_mem = '8MB'" in run.output, run.output[-4000:]
    after = server_state(lab)
    assert (after.loaded, after.started, after.candidates) == (
        before.loaded,
        before.started,
        0,
    )
    dropin = f"{cluster(lab).config}/conf.d/50-pgfortress.conf"
    assert "8MB" not in ssh(lab, "db1", f"cat {dropin}")


def test_a_stopped_server_is_started_then_changed(
    lab: LabState, tmp_path: Path
) -> None:
    ssh(lab, "db1", f"systemctl stop {cluster(lab).service}")
    try:
        run = run_deploy(lab, "deploys/postgres.py", extra=WORK_MEM)

        assert run.returncode == 0, run.output[-4000:]
        assert (
            "[db1] Harden PostgreSQL server | PostgreSQL running and enabled"
            in run.changed
        )
        assert "pgfortress: reloading: no changed setting needs a restart" in (
            run.output
        )
        state = server_state(lab)
        assert state.work_mem == "8MB"
        assert state.candidates == 0
        assert client_connects(lab, tmp_path).returncode == 0
    finally:
        converge(lab)


def test_a_stopped_server_never_gets_a_rejected_file(
    lab: LabState, tmp_path: Path
) -> None:
    before = server_state(lab)
    ssh(lab, "db1", f"systemctl stop {cluster(lab).service}")

    run = run_deploy(lab, "tests/lab/deploys/broken_hba.py")

    assert run.returncode != 0
    assert "scram-sha-257" in failure_line(run)
    active = f"systemctl is-active {cluster(lab).service}"
    assert ssh_run(lab, "db1", active).returncode == 0
    after = server_state(lab)
    assert (after.hba, after.rules, after.dropin) == (
        before.hba,
        before.rules,
        before.dropin,
    )
    assert after.candidates == 0
    assert client_connects(lab, tmp_path).returncode == 0


def test_a_certificate_the_server_cannot_load_is_rolled_back(
    lab: LabState, tmp_path: Path
) -> None:
    before = server_state(lab)

    run = run_deploy(lab, "tests/lab/deploys/wrong_certificate.py")

    assert run.returncode != 0
    line = failure_line(run)
    assert line.startswith("db1: after the reload, TLS check failed: ")
    assert "key values mismatch" in line
    assert line.endswith("PostgreSQL was reloaded with the previous files")
    assert server_state(lab).cert == before.cert
    assert client_connects(lab, tmp_path).returncode == 0


def test_a_policy_that_locks_the_admin_out_is_rolled_back(lab: LabState) -> None:
    before = server_state(lab)

    run = run_deploy(lab, "tests/lab/deploys/admin_locked_out.py")

    assert run.returncode != 0
    line = failure_line(run)
    assert line.startswith("db1: after the reload, postgres cannot connect")
    assert 'pg_hba.conf rejects connection for host "[local]", user "postgres"' in (
        line
    )
    after = server_state(lab)
    assert (after.hba, after.rules) == (before.hba, before.rules)
    assert converge(lab).changed == []


@pytest.mark.parametrize("cut_after", [2.0, 5.0, 8.0])
def test_a_deploy_cut_off_midway_converges_on_the_next_run(
    lab: LabState, tmp_path: Path, cut_after: float
) -> None:
    # The deploy changes a setting; its SSH sessions are killed on db1 (as a
    # dropped network would end them) at some point of the run.
    before = server_state(lab)
    env = os.environ | {"PGFORTRESS_LAB": lab.name, "PYTHONUNBUFFERED": "1"}
    pyinfra = [str(BIN / "pyinfra"), "-y", *WORK_MEM]
    try:
        cut = subprocess.Popen(
            [*pyinfra, "inventories/lab.py", "deploys/postgres.py"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(cut_after)
        ssh_run(lab, "db1", "pkill -KILL -f '^sshd: root@'")
        cut.wait(timeout=300)

        rerun = run_deploy(lab, "deploys/postgres.py", extra=WORK_MEM)
        assert rerun.returncode == 0, rerun.output[-4000:]
        again = run_deploy(lab, "deploys/postgres.py", extra=WORK_MEM)
        assert again.returncode == 0
        assert again.changed == [], "\n".join(again.changed)
        state = server_state(lab)
        assert (state.work_mem, state.candidates) == ("8MB", 0)
        assert client_connects(lab, tmp_path).returncode == 0
    finally:
        converge(lab)
    assert server_state(lab).work_mem == before.work_mem
