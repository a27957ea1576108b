"""Per-host identity leaves a built root; the first-boot unit makes it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgfortress.image import ImageError, clean_root, identity_plan
from pgfortress.image.bake import require_clean_shutdown
from pgfortress.image.firstboot import (
    SCRIPT_PATH,
    UNIT_NAME,
    install_first_boot,
    render_script,
    render_unit,
)

BUILT_HOST = {
    "etc/ssh/ssh_host_ed25519_key": "private",
    "etc/ssh/ssh_host_ed25519_key.pub": "public",
    "etc/ssh/sshd_config": "kept",
    "etc/ssh/sshd_config.d/pgfortress-lab.conf": "lab",
    "etc/machine-id": "0123456789abcdef0123456789abcdef\n",
    "var/lib/dbus/machine-id": "0123456789abcdef0123456789abcdef\n",
    "var/lib/systemd/random-seed": "seed",
    "root/.ssh/authorized_keys": "ssh-ed25519 AAAA lab",
    "root/.bash_history": "psql -c secret",
    "var/lib/postgresql/.psql_history": "ALTER ROLE x PASSWORD 'y'",
    "etc/apt/apt.conf.d/01pgfortress-proxy": "Acquire::http::Proxy",
    "etc/apt/apt.conf.d/70debconf": "kept",
    "etc/apt/sources.list": "deb http://mirror.lab/debian bookworm main",
    "var/lib/apt/lists/deb_dists_bookworm_InRelease": "lists",
    "var/lib/apt/lists/lock": "",
    "var/cache/apt/pkgcache.bin": "cache",
    "var/cache/apt/archives/postgresql-15_15.8_amd64.deb": "deb",
    "var/log/journal/abc/system.journal": "journal",
    "var/log/dpkg.log": "installed things",
    "var/log/postgresql/postgresql-15-main.log": "log lines",
    "var/log/apt/history.log.1.gz": "old",
    "tmp/build-leftover": "x",
    "etc/postgresql/15/main/tls/server.key": "KEY",
    "etc/postgresql/15/main/tls/server.crt": "CERT",
    "etc/postgresql/15/main/tls/ca.crt": "CA",
    "etc/postgresql/15/main/pg_hba.conf": "rules",
    "etc/postgresql/15/main/pg_hba.conf.pgf-previous": "debian's",
    "etc/postgresql/15/main/conf.d/50-pgfortress.conf": "settings",
    "usr/local/share/ca-certificates/pgfortress-ca.crt": "build CA",
    "etc/ssl/private/ssl-cert-snakeoil.key": "snakeoil",
    "etc/hostname": "db1\n",
}

GONE = [
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "etc/ssh/sshd_config.d/pgfortress-lab.conf",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "root/.ssh/authorized_keys",
    "root/.bash_history",
    "var/lib/postgresql/.psql_history",
    "etc/apt/apt.conf.d/01pgfortress-proxy",
    "var/lib/apt/lists/deb_dists_bookworm_InRelease",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/archives/postgresql-15_15.8_amd64.deb",
    "var/log/journal/abc",
    "var/log/apt/history.log.1.gz",
    "tmp/build-leftover",
    "etc/postgresql/15/main/tls/server.key",
    "etc/postgresql/15/main/tls/server.crt",
    "etc/postgresql/15/main/tls/ca.crt",
    "etc/postgresql/15/main/pg_hba.conf.pgf-previous",
    "usr/local/share/ca-certificates/pgfortress-ca.crt",
    "etc/ssl/private/ssl-cert-snakeoil.key",
]

KEPT = [
    "etc/ssh/sshd_config",
    "etc/apt/apt.conf.d/70debconf",
    "var/lib/apt/lists/lock",
    "etc/postgresql/15/main/pg_hba.conf",
    "etc/postgresql/15/main/conf.d/50-pgfortress.conf",
]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for relative, text in BUILT_HOST.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "var/log/postgresql/postgresql-15-main.log").chmod(0o640)
    return root


def test_cleaning_removes_every_piece_of_identity_and_keeps_the_hardening(
    built: Path,
) -> None:
    removed = clean_root(built, identity_plan(15))
    for relative in GONE:
        assert not (built / relative).exists(), relative
        assert any(r == relative or relative.startswith(r + "/") for r in removed)
    for relative in KEPT:
        assert (built / relative).read_text() == BUILT_HOST[relative], relative


def test_machine_id_is_left_empty_for_systemd_to_fill(built: Path) -> None:
    clean_root(built, identity_plan(15))
    machine_id = built / "etc/machine-id"
    assert machine_id.read_text() == ""
    assert machine_id.stat().st_mode & 0o777 == 0o444


def test_logs_are_emptied_but_keep_their_mode(built: Path) -> None:
    clean_root(built, identity_plan(15))
    log = built / "var/log/postgresql/postgresql-15-main.log"
    assert log.read_text() == ""
    assert log.stat().st_mode & 0o777 == 0o640
    assert (built / "var/log/dpkg.log").read_text() == ""


def test_host_name_hosts_and_sources_are_the_lab_s_no_more(built: Path) -> None:
    clean_root(built, identity_plan(15))
    assert (built / "etc/hostname").read_text() == "localhost\n"
    assert "db1" not in (built / "etc/hosts").read_text()
    sources = (built / "etc/apt/sources.list").read_text()
    assert "mirror.lab" not in sources
    assert all(line.startswith("#") for line in sources.splitlines())


def test_a_symlink_is_removed_as_a_link_never_followed(
    built: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (built / "root/.cache").symlink_to(outside)
    clean_root(built, identity_plan(15))
    assert not (built / "root/.cache").exists()
    assert (outside / "precious").read_text() == "keep me"


def test_the_snakeoil_hash_link_goes_with_the_pair_other_links_stay(
    built: Path,
) -> None:
    certs = built / "etc/ssl/certs"
    mozilla = built / "usr/share/ca-certificates/mozilla"
    mozilla.mkdir(parents=True)
    (mozilla / "ISRG_Root_X1.crt").write_text("public CA")
    certs.mkdir(parents=True)
    (certs / "ssl-cert-snakeoil.pem").write_text("CN=db1")
    (certs / "fc59437b.0").symlink_to("ssl-cert-snakeoil.pem")
    # Absolute targets name the image's files, which the build machine lacks.
    absolute = "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt"
    (certs / "ISRG_Root_X1.pem").symlink_to(absolute)
    (certs / "4042bcee.0").symlink_to("ISRG_Root_X1.pem")
    (certs / "ca-certificates.crt").write_text("bundle")

    removed = clean_root(built, identity_plan(17))

    assert "etc/ssl/certs/fc59437b.0" in removed
    assert "etc/ssl/certs/ssl-cert-snakeoil.pem" in removed
    assert sorted(p.name for p in certs.iterdir()) == [
        "4042bcee.0",
        "ISRG_Root_X1.pem",
        "ca-certificates.crt",
    ]


def test_a_pattern_leading_outside_the_root_is_refused(
    built: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "x").mkdir(parents=True)
    (elsewhere / "x" / "ssh_host_rsa_key").write_text("not ours")
    (built / "etc/ssh").rename(built / "etc/ssh-real")
    (built / "etc/ssh").symlink_to(elsewhere / "x")
    with pytest.raises(ImageError, match="outside the image root"):
        clean_root(built, identity_plan(15))
    assert (elsewhere / "x" / "ssh_host_rsa_key").exists()


def test_without_postgresql_its_files_are_not_in_the_plan() -> None:
    assert not any("etc/postgresql" in p for p in identity_plan(None).remove)
    assert any("etc/postgresql/15/" in p for p in identity_plan(15).remove)


def test_first_boot_makes_ssh_keys_and_a_private_tls_pair() -> None:
    script = render_script(15)
    assert script.startswith("#!/bin/sh\n")
    assert "umask 077" in script
    assert "ssh-keygen -A" in script
    assert "tls=/etc/postgresql/15/main/tls" in script
    assert '-m 600 "$work/server.key"' in script
    # The one-off issuer's key never outlives the script.
    assert 'rm -rf "$work"' in script
    assert "/etc/postgresql" not in render_script(None)


def test_first_boot_unit_runs_before_sshd_and_postgresql() -> None:
    unit = render_unit(17)
    assert "Before=ssh.service postgresql@17-main.service postgresql.service" in unit
    assert f"ExecStart=/{SCRIPT_PATH}" in unit
    assert "WantedBy=multi-user.target" in unit


def test_first_boot_is_installed_and_enabled(tmp_path: Path) -> None:
    install_first_boot(tmp_path, 15)
    script = tmp_path / SCRIPT_PATH
    assert script.stat().st_mode & 0o777 == 0o755
    link = tmp_path / "etc/systemd/system/multi-user.target.wants" / UNIT_NAME
    assert link.is_symlink()
    assert str(link.readlink()) == f"/etc/systemd/system/{UNIT_NAME}"
    install_first_boot(tmp_path, 15)  # again: replaces, does not fail


def test_a_root_whose_postgresql_did_not_stop_cleanly_is_refused(
    tmp_path: Path,
) -> None:
    data = tmp_path / "var/lib/postgresql/15/main"
    data.mkdir(parents=True)
    require_clean_shutdown(tmp_path, 15)
    require_clean_shutdown(tmp_path, None)
    (data / "postmaster.pid").write_text("45\n")
    with pytest.raises(ImageError, match="did not shut down cleanly"):
        require_clean_shutdown(tmp_path, 15)
