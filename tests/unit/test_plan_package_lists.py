"""The bounded ``apt-get update``: run against a stand-in apt-get on PATH."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan.package_lists import attempt_seconds_from, refresh_script


def run_with_fake_apt(tmp_path: Path, body: str, script: str) -> tuple[int, str, int]:
    """Run ``script`` with an ``apt-get`` whose behaviour is ``body``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    calls = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho called >> {calls}\n{body}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    count = len(calls.read_text().splitlines()) if calls.exists() else 0
    return done.returncode, done.stderr, count


def test_a_working_refresh_runs_once(tmp_path: Path) -> None:
    status, stderr, calls = run_with_fake_apt(tmp_path, "exit 0", refresh_script())
    assert (status, stderr, calls) == (0, "", 1)


def test_a_failing_refresh_is_tried_again_then_named(tmp_path: Path) -> None:
    status, stderr, calls = run_with_fake_apt(
        tmp_path, "exit 100", refresh_script(attempts=2, attempt_seconds=5)
    )
    assert (status, calls) == (1, 2)
    assert "attempt 1 of 2" in stderr
    assert "attempt 2 of 2" in stderr
    assert "did not succeed in 2 attempts of at most 5 s each" in stderr
    assert "check the host's apt sources" in stderr


def test_a_stuck_refresh_is_cut_off_and_tried_again(tmp_path: Path) -> None:
    # The stand-in hangs on its first call only, as apt did behind the proxy.
    body = f"[ -e {tmp_path}/hung ] && exit 0; touch {tmp_path}/hung; sleep 120"
    status, stderr, calls = run_with_fake_apt(
        tmp_path, body, refresh_script(attempts=3, attempt_seconds=1)
    )
    assert (status, calls) == (0, 2)
    assert "exit 124" in stderr


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        refresh_script(attempts=0)


def test_the_attempt_limit_defaults_to_five_minutes() -> None:
    assert attempt_seconds_from("db1", {}) == 300
    assert attempt_seconds_from("db1", {"apt_refresh_seconds": 120}) == 120


@pytest.mark.parametrize("value", [0, 29, 3601, "120", 120.5, True, None])
def test_an_unusable_attempt_limit_names_host_key_and_fix(value: object) -> None:
    with pytest.raises(SpecError) as raised:
        attempt_seconds_from("db1", {"apt_refresh_seconds": value})
    message = str(raised.value)
    assert message.startswith("host db1: apt_refresh_seconds: ")
    assert "whole number of seconds from 30 to 3600" in message
