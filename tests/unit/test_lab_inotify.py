"""Room for more hosts: counting root's inotify instances against the limit."""

from __future__ import annotations

import os
from pathlib import Path

from pgfortress.lab.inotify import PER_HOST, instances_in_use, limit, room_problem


def _process(proc: Path, pid: int, links: list[str]) -> None:
    fd_dir = proc / str(pid) / "fd"
    fd_dir.mkdir(parents=True)
    for number, target in enumerate(links):
        (fd_dir / str(number)).symlink_to(target)


def test_only_inotify_descriptors_of_the_user_are_counted(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _process(proc, 1, ["anon_inode:inotify", "anon_inode:inotify", "/dev/null"])
    _process(proc, 42, ["socket:[7]", "anon_inode:inotify"])
    (proc / "self").mkdir()
    (proc / "sys").mkdir()
    assert instances_in_use(proc, uid=os.getuid()) == 3
    assert instances_in_use(proc, uid=os.getuid() + 1) == 0
    assert instances_in_use(tmp_path / "missing") == 0


def test_the_limit_is_read_or_unknown(tmp_path: Path) -> None:
    path = tmp_path / "max_user_instances"
    path.write_text("128\n")
    assert limit(path) == 128
    path.write_text("lots\n")
    assert limit(path) is None
    assert limit(tmp_path / "missing") is None


def test_hosts_that_fit_pass_and_the_rest_are_named_with_the_fix() -> None:
    assert room_problem(4, 128, 21) is None
    assert room_problem(13, 128, 21) is None  # 104 needed, 107 left
    problem = room_problem(20, 128, 21)
    assert problem is not None
    assert problem.startswith(
        f"20 hosts need about {20 * PER_HOST} inotify instances, and root has "
        "107 of 128 left"
    )
    assert "sysctl fs.inotify.max_user_instances=1024" in problem
    assert room_problem(20, 1024, 21) is None
    assert room_problem(1, 128, 200) is not None  # over the limit already
    assert room_problem(20, None, 21) is None  # unknown limit: no guess
