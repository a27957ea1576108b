"""Writing into a host root copy: never through symlinks, never outside."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from pgfortress.errors import LabError
from pgfortress.lab.hostroot import HostFiles, prepare_root, write_into


def test_write_replaces_a_symlink_instead_of_following_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.write_text("untouched\n")
    (root / "etc/resolv.conf").symlink_to(outside)
    write_into(root, "etc/resolv.conf", "nameserver 127.0.0.1\n")
    assert outside.read_text() == "untouched\n"
    assert not (root / "etc/resolv.conf").is_symlink()
    assert (root / "etc/resolv.conf").read_text() == "nameserver 127.0.0.1\n"


def test_write_refuses_a_directory_leading_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    with pytest.raises(LabError, match="outside the host root"):
        write_into(root, "etc/hosts", "x\n")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o444])
def test_write_sets_the_mode(tmp_path: Path, mode: int) -> None:
    path = write_into(tmp_path, "etc/file", "x\n", mode)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_prepare_root_configures_the_host(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/apt/sources.list.d/old.sources").write_text("stale\n")
    (root / "etc/ssh/ssh_host_rsa_key").write_text("old key\n")
    shared = HostFiles(
        etc_hosts="hosts\n",
        sources_list="deb http://mirror.example/debian bookworm main\n",
        apt_proxy="proxy\n",
        authorized_key="ssh-ed25519 AAAAlab pgfortress-lab-x\n",
    )
    public = prepare_root(root, "db1", shared)

    assert public.startswith("ssh-ed25519 ")
    assert (root / "etc/hostname").read_text() == "db1\n"
    assert (root / "etc/machine-id").read_text() == ""
    assert sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*")) == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
    ]
    assert list((root / "etc/apt/sources.list.d").iterdir()) == []
    keys = root / "root/.ssh/authorized_keys"
    assert keys.read_text() == shared.authorized_key
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "root/.ssh").stat().st_mode) == 0o700
    assert (
        "PermitRootLogin prohibit-password"
        in (root / "etc/ssh/sshd_config.d/pgfortress-lab.conf").read_text()
    )
