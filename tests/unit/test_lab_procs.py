"""Recorded processes: matched by argv and start time, stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgfortress.lab import procs

ARGV = ["sleep", "30"]


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[procs.ProcessRecord]:
    pid = procs.spawn(ARGV, tmp_path / "sleep.log")
    entry = procs.record(tmp_path / "run", "sleeper", pid, ARGV)
    yield entry
    procs.kill([entry])


def test_started_process_is_alive_and_recorded(
    sleeper: procs.ProcessRecord, tmp_path: Path
) -> None:
    assert procs.is_alive(sleeper)
    assert procs.read_records(tmp_path / "run") == {"sleeper": sleeper}
    assert sleeper.pid in procs.children_of(os.getpid())


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"argv": ("sleep", "31")}, id="other-argv"),
        pytest.param({"started": 1}, id="other-start-time"),
    ],
)
def test_pid_with_other_identity_counts_as_gone(
    sleeper: procs.ProcessRecord, change: dict[str, object]
) -> None:
    fields = {**vars(sleeper), **change}
    assert not procs.is_alive(procs.ProcessRecord(**fields))


def test_stop_ends_and_reaps_the_process(sleeper: procs.ProcessRecord) -> None:
    # stop() returns as soon as the process is gone; the long limit only
    # matters on a machine so busy that the exit takes seconds to show.
    assert procs.stop([sleeper], signal.SIGTERM, timeout=30) == []
    assert not procs.is_alive(sleeper)
    with pytest.raises(ChildProcessError):
        os.waitpid(sleeper.pid, os.WNOHANG)


def test_stop_leaves_a_pid_that_no_longer_matches(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "30"]) as other:
        impostor = procs.ProcessRecord("x", other.pid, ("not", "this"), 0)
        assert procs.stop([impostor], signal.SIGKILL, timeout=1) == []
        assert other.poll() is None
        other.kill()


def test_forget_drops_the_record(sleeper: procs.ProcessRecord, tmp_path: Path) -> None:
    procs.forget(tmp_path / "run", "sleeper")
    assert procs.read_records(tmp_path / "run") == {}


def test_no_run_directory_means_no_records(tmp_path: Path) -> None:
    assert procs.read_records(tmp_path / "missing") == {}


def test_wait_for_exec_sees_a_wrapper_become_the_command(tmp_path: Path) -> None:
    wrapper = ["sh", "-c", "sleep 0.2; exec sleep 30"]
    pid = procs.spawn(wrapper, tmp_path / "log")
    entry = procs.record(tmp_path / "run", "late", pid, ARGV)
    assert not procs.is_alive(entry)
    assert procs.wait_for_exec(pid, ARGV, timeout=5)
    assert procs.is_alive(entry)
    procs.kill([entry])


def test_wait_for_exec_gives_up_when_the_process_ends(tmp_path: Path) -> None:
    pid = procs.spawn(["true"], tmp_path / "log")
    assert not procs.wait_for_exec(pid, ARGV, timeout=5)


def test_listens_on_names_the_owner_of_a_listening_socket(
    sleeper: procs.ProcessRecord,
) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert procs.listens_on(os.getpid(), "127.0.0.1", port)
        assert not procs.listens_on(sleeper.pid, "127.0.0.1", port)
        assert not procs.listens_on(os.getpid(), "127.0.0.2", port)
    assert not procs.listens_on(os.getpid(), "127.0.0.1", port)
