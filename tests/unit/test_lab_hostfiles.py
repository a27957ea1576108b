"""Files written into hosts and into the lab directory."""

from __future__ import annotations

from pathlib import Path

from pgfortress.lab import hostfiles
from pgfortress.lab.aptproxy import ProxyPaths, render_acng_conf
from pgfortress.lab.sources import AptSource

HOSTS = {
    "db1": ("10.213.7.10", "fd70:6766:213:7::10"),
    "client1": ("10.213.7.11", "fd70:6766:213:7::11"),
}
GATEWAY = ("10.213.7.1", "fd70:6766:213:7::1")


def test_etc_hosts_lists_control_and_every_host_in_both_families() -> None:
    lines = hostfiles.render_etc_hosts(GATEWAY, HOSTS).splitlines()
    assert lines[0] == hostfiles.HOSTS_HEADER
    assert "127.0.0.1\tlocalhost" in lines
    assert lines[-6:] == [
        "10.213.7.1\tcontrol",
        "fd70:6766:213:7::1\tcontrol",
        "10.213.7.10\tdb1",
        "fd70:6766:213:7::10\tdb1",
        "10.213.7.11\tclient1",
        "fd70:6766:213:7::11\tclient1",
    ]


def test_resolv_conf_fails_fast_and_points_nowhere_outside() -> None:
    text = hostfiles.render_resolv_conf()
    assert "nameserver 127.0.0.1" in text
    assert "options timeout:1 attempts:1" in text
    assert text.count("nameserver") == 1


def test_sshd_dropin_allows_only_keys_for_root() -> None:
    settings = dict(
        line.split(" ", 1)
        for line in hostfiles.render_sshd_dropin().splitlines()
        if not line.startswith("#")
    )
    assert settings == {
        "HostKey": "/etc/ssh/ssh_host_ed25519_key",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitRootLogin": "prohibit-password",
        "UseDNS": "no",
    }


def test_apt_proxy_conf() -> None:
    text = hostfiles.render_apt_proxy("http://10.213.7.1:3142")
    assert 'Acquire::http::Proxy "http://10.213.7.1:3142";' in text
    assert 'Acquire::http::Timeout "30";' in text
    assert 'Acquire::Retries "5";' in text
    assert 'Acquire::http::Pipeline-Depth "0";' in text


def test_known_hosts_pins_key_under_name_and_both_addresses() -> None:
    text = hostfiles.render_known_hosts({"db1": (HOSTS["db1"], "ssh-ed25519 AAAAkey")})
    assert text == "db1,10.213.7.10,fd70:6766:213:7::10 ssh-ed25519 AAAAkey\n"


def test_ssh_config_is_strict_and_covers_names_and_addresses() -> None:
    text = hostfiles.render_ssh_config(
        HOSTS, Path("/labs/x/id_ed25519"), Path("/labs/x/known_hosts")
    )
    lines = [line.strip() for line in text.splitlines()]
    assert "Host db1" in lines
    assert "HostName 10.213.7.10" in lines
    assert (
        "Host db1 10.213.7.10 fd70:6766:213:7::10 "
        "client1 10.213.7.11 fd70:6766:213:7::11"
    ) in lines
    for option in (
        "User root",
        "IdentityFile /labs/x/id_ed25519",
        "IdentitiesOnly yes",
        "UserKnownHostsFile /labs/x/known_hosts",
        "GlobalKnownHostsFile /dev/null",
        "StrictHostKeyChecking yes",
        "BatchMode yes",
    ):
        assert option in lines
    assert "Host *" not in lines


def test_acng_conf_binds_to_the_bridge_and_serves_only_the_mirrors() -> None:
    paths = ProxyPaths(Path("/labs/x/acng"), Path("/cache/apt/x"))
    entries = [
        AptSource("deb", "http://mirror.example/debian", "bookworm", ("main",)),
        AptSource("deb", "http://mirror.example/debian", "bookworm-updates", ("main",)),
        AptSource(
            "deb",
            "http://mirror.example/debian-security",
            "bookworm-security",
            ("main",),
        ),
    ]
    conf = dict(
        line.split(": ", 1)
        for line in render_acng_conf(paths, "10.213.7.1", entries).splitlines()
        if not line.startswith("#")
    )
    assert conf["CacheDir"] == "/cache/apt/x"
    assert conf["LogDir"] == "/labs/x/acng/log"
    assert conf["SupportDir"] == "/usr/lib/apt-cacher-ng"
    assert conf["BindAddress"] == "10.213.7.1"
    assert conf["Port"] == "3142"
    assert conf["SocketPath"] == "/labs/x/acng/socket"
    assert conf["ForceManaged"] == "1"
    assert conf["PassThroughPattern"] == "^$"
    assert conf["Remap-pgf0"] == (
        "mirror.example/debian ; http://mirror.example/debian/"
    )
    assert conf["Remap-pgf1"] == (
        "mirror.example/debian-security ; http://mirror.example/debian-security/"
    )
    assert "Remap-pgf2" not in conf
    assert conf["NetworkTimeout"] == "20"
    assert conf["DlMaxRetries"] == "5"
