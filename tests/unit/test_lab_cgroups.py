"""The wrapper that starts a command inside given cgroup directories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgfortress.lab.cgroups import enter_argv, remove_cgroups


def test_command_pid_is_written_to_every_group_then_it_runs(tmp_path: Path) -> None:
    # Plain directories stand in for cgroups: the wrapper only writes a file.
    groups = [tmp_path / "v2" / "m", tmp_path / "v1" / "m"]
    argv = enter_argv(groups, ["sh", "-c", "echo $$"])
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    pid = result.stdout.strip()
    assert [(g / "cgroup.procs").read_text().strip() for g in groups] == [pid, pid]


def test_command_does_not_run_if_a_group_cannot_be_entered(tmp_path: Path) -> None:
    group = tmp_path / "g"
    argv = enter_argv([group], ["touch", str(tmp_path / "ran")])
    (group / "cgroup.procs").mkdir()
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 125
    assert not (tmp_path / "ran").exists()


def test_empty_groups_are_removed_bottom_up(tmp_path: Path) -> None:
    group = tmp_path / "m"
    (group / "payload" / "system.slice").mkdir(parents=True)
    assert remove_cgroups([group, tmp_path / "absent"]) == []
    assert not group.exists()
