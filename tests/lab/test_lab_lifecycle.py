"""Real lab hosts on this machine: up, use, up again, down, and recovery.

These tests boot systemd-nspawn hosts and so need root; they fail (never skip)
without it, because a lab test that silently does not run proves nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgfortress.lab
from pgfortress.lab import LabState

from .conftest import lab_name

pytestmark = pytest.mark.lab

LAB = lab_name("life")
HOSTS = ("db1", "client1")


def _ssh(state: LabState, host: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        state.ssh_argv(host, *command),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _records(state: LabState) -> dict[str, int]:
    run_dir = state.dir / "run"
    return {
        path.stem: json.loads(path.read_text())["pid"]
        for path in run_dir.glob("*.json")
    }


def _processes_mentioning(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            text = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if entry.name.isdigit() and str(path) in text:
            found.append(int(entry.name))
    return found


def _assert_gone(state: LabState) -> None:
    assert pgfortress.lab.remnants(state) == []
    assert _processes_mentioning(state.dir) == []
    netns = {p.name for p in Path("/run/netns").glob("*")}
    assert not netns & {host.netns for host in state.hosts.values()}
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True)
    assert state.bridge not in links.stdout.split()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(state.dir) not in mounts
    assert f"pgf-{state.name}-" not in mounts


@pytest.fixture(scope="module")
def lab() -> Iterator[LabState]:
    assert os.geteuid() == 0, "lab tests boot systemd-nspawn hosts: run them as root"
    # A lab of this name left by an aborted earlier run of these tests.
    pgfortress.lab.down(LAB)
    state = pgfortress.lab.up(LAB, HOSTS)
    yield state
    pgfortress.lab.down(LAB)


def test_every_host_accepts_strict_ssh_with_the_lab_key(lab: LabState) -> None:
    for name in HOSTS:
        result = _ssh(lab, name, "hostname")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == name


def test_unknown_host_key_is_refused(lab: LabState) -> None:
    argv = lab.ssh_argv("db1", "true")
    argv[3:3] = ["-o", "UserKnownHostsFile=/dev/null"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "Host key verification failed" in result.stderr


def test_hosts_run_systemd_as_pid_1_and_finish_booting(lab: LabState) -> None:
    for name in HOSTS:
        assert _ssh(lab, name, "cat", "/proc/1/comm").stdout.strip() == "systemd"
        state = _ssh(lab, name, "systemctl", "is-system-running", "--wait")
        assert state.stdout.strip() in ("running", "degraded")


def test_apt_reaches_the_mirror_through_the_lab_proxy(lab: LabState) -> None:
    result = _ssh(lab, "db1", "apt-get", "update")
    assert result.returncode == 0, result.stdout + result.stderr
    proxy = _ssh(lab, "db1", "apt-config", "dump", "Acquire::http::Proxy")
    assert lab.apt_proxy in proxy.stdout


def test_hosts_have_no_route_off_the_lab(lab: LabState) -> None:
    for family in ("-4", "-6"):
        assert _ssh(lab, "db1", "ip", family, "route", "show", "default").stdout == ""
    # A route lookup only: no packet is sent anywhere.
    lookup = _ssh(lab, "db1", "ip", "route", "get", "203.0.113.1")
    assert lookup.returncode != 0
    assert "unreachable" in lookup.stderr


def test_hosts_reach_each_other_and_control_by_name(lab: LabState) -> None:
    probe = "import socket; socket.create_connection(('client1', 22), 5).close()"
    assert _ssh(lab, "db1", "python3", "-c", probe).returncode == 0
    control = _ssh(lab, "db1", "getent", "ahostsv4", "control").stdout
    assert control.split()[0] == lab.gateway


def test_state_describes_the_hosts(lab: LabState) -> None:
    assert pgfortress.lab.load(LAB) == lab
    assert lab.hosts["db1"].groups == ("db",)
    assert lab.hosts["client1"].groups == ("client",)
    assert lab.ssh_key.stat().st_mode & 0o777 == 0o600
    assert lab.dir.stat().st_mode & 0o777 == 0o700


def test_status_reports_a_healthy_lab(lab: LabState) -> None:
    current = pgfortress.lab.status(LAB)
    assert current.healthy
    assert [host.name for host in current.hosts] == list(HOSTS)


def test_second_up_changes_nothing(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _records(lab)
    assert pgfortress.lab.up(LAB, HOSTS) == lab
    assert _records(lab) == before
    assert "nothing changed" in capsys.readouterr().out


def test_down_leaves_nothing_behind(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    pgfortress.lab.down(LAB)
    _assert_gone(lab)
    pgfortress.lab.down(LAB)
    assert "no lab named" in capsys.readouterr().out


def test_up_recovers_from_a_killed_run() -> None:
    assert os.geteuid() == 0, "lab tests boot systemd-nspawn hosts: run them as root"
    state = pgfortress.lab.up(LAB, HOSTS)
    try:
        records = _records(state)
        for label, pid in records.items():
            if label.startswith("nspawn-") or label == "apt-proxy":
                os.kill(pid, signal.SIGKILL)
        # SIGKILL is delivered, not obeyed at once: on a busy machine a killed
        # process can still show in /proc as running for a moment.
        for _ in range(50):
            if not pgfortress.lab.status(LAB).healthy:
                break
            time.sleep(0.2)
        assert not pgfortress.lab.status(LAB).healthy

        recovered = pgfortress.lab.up(LAB, HOSTS)

        assert pgfortress.lab.status(LAB).healthy
        assert _ssh(recovered, "db1", "true").returncode == 0
        # The orphaned container inits of the killed run are gone too.
        for label, pid in records.items():
            if label.startswith("init-"):
                assert not Path(f"/proc/{pid}/cmdline").exists() or (
                    Path(f"/proc/{pid}/cmdline").read_bytes() == b""
                )
    finally:
        pgfortress.lab.down(LAB)
    _assert_gone(state)
