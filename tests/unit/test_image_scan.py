"""No private key or secret file leaves in an image, whatever form it takes."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from pgfortress.image import ImageError, scan_root, scan_tarball
from pgfortress.image.scan import findings_in, packaged_md5s, refuse_if_any

BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" * 2
KEYS = {
    "PKCS#8": f"-----BEGIN PRIVATE KEY-----\n{BODY}\n-----END PRIVATE KEY-----\n",
    "RSA": f"-----BEGIN RSA PRIVATE KEY-----\n{BODY}\n-----END RSA PRIVATE KEY-----",
    "EC": f"-----BEGIN EC PRIVATE KEY-----\r\n{BODY}\r\n-----END EC PRIVATE KEY-----",
    "ENCRYPTED": (
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{BODY}\n"
        "-----END ENCRYPTED PRIVATE KEY-----\n"
    ),
    "OPENSSH": (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{BODY}\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    ),
}


@pytest.mark.parametrize("kind", list(KEYS))
def test_a_pem_private_key_is_found_in_any_file(kind: str) -> None:
    found = findings_in("opt/app/anything.txt", b"prefix\n" + KEYS[kind].encode())
    assert [f.path for f in found] == ["opt/app/anything.txt"]
    assert f"({kind})" in found[0].reason


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
        # A header string alone, as libraries carry it, is no key.
        'PEM_HEADER = "-----BEGIN PRIVATE KEY-----"',
        "-----BEGIN PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_certificates_public_keys_and_bare_headers_are_not_keys(text: str) -> None:
    assert findings_in("etc/x.pem", text.encode()) == []


@pytest.mark.parametrize(
    "path",
    [
        "etc/ssh/ssh_host_ed25519_key",
        "etc/postgresql/15/main/tls/server.key",
        "etc/postgresql/17/main/tls/server.key.pgf-previous",
        "etc/pgfortress-gateway/tls.key",
        "etc/pgfortress-gateway/jwt-secret",
        "etc/pgfortress-gateway/db-password",
        "etc/pgfortress-gateway/gateway.toml",
        "etc/ldap/tls/server.key",
        "etc/redis/redis.conf",
        "etc/ssl/private/ssl-cert-snakeoil.key",
        "root/.ssh/authorized_keys",
    ],
)
def test_a_secret_file_of_the_toolkit_is_found_even_empty(path: str) -> None:
    found = findings_in(path, b"")
    assert len(found) == 1
    assert "a secret file" in found[0].reason


def test_public_halves_and_ordinary_files_pass() -> None:
    for path in ("etc/ssh/ssh_host_ed25519_key.pub", "etc/postgresql/15/main/x"):
        assert findings_in(path, b"ssh-ed25519 AAAA") == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_key_a_debian_package_ships_unchanged_is_public(tmp_path: Path) -> None:
    library = "usr/lib/x86_64-linux-gnu/libtls-selftest.so"
    content = "\x7fELF" + KEYS["RSA"]
    md5 = hashlib.md5(content.encode(), usedforsecurity=False).hexdigest()
    root = _tree(
        tmp_path,
        {library: content, "var/lib/dpkg/info/libtls.md5sums": f"{md5}  {library}\n"},
    )
    assert scan_root(root) == []
    # The same path with other content is the build's, not the package's.
    (root / library).write_text(content + "changed")
    assert [f.path for f in scan_root(root)] == [library]


def test_packaged_md5s_reads_dpkg_lists() -> None:
    assert packaged_md5s("abc  usr/bin/x\n\ndef  usr/share/a b\n") == {
        "usr/bin/x": "abc",
        "usr/share/a b": "def",
    }


def test_a_root_and_its_tarball_give_the_same_findings(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "root",
        {
            "etc/hostname": "localhost\n",
            "srv/app/.env": "KEY=" + KEYS["PKCS#8"],
            "etc/ssh/ssh_host_rsa_key": "x",
        },
    )
    (root / "etc/link").symlink_to("/etc/ssh/ssh_host_rsa_key")
    tarball = tmp_path / "image.rootfs.tar.zst"
    subprocess.run(
        ["tar", "--zstd", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."],
        check=True,
    )
    expected = ["etc/ssh/ssh_host_rsa_key", "srv/app/.env"]
    assert sorted(f.path for f in scan_root(root)) == expected
    assert sorted(f.path for f in scan_tarball(tarball)) == expected


def test_an_unreadable_tarball_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rootfs.tar.zst"
    bad.write_bytes(b"not zstd")
    with pytest.raises(ImageError, match=r"bad\.rootfs\.tar\.zst"):
        scan_tarball(bad)


def test_refusal_names_every_file_and_the_way_out() -> None:
    found = findings_in("etc/ssh/ssh_host_rsa_key", b"") + findings_in(
        "srv/k.pem", KEYS["EC"].encode()
    )
    with pytest.raises(ImageError) as refused:
        refuse_if_any(found, "out/x.rootfs.tar.zst")
    message = str(refused.value)
    assert "/etc/ssh/ssh_host_rsa_key" in message
    assert "/srv/k.pem: holds a PEM private key (EC)" in message
    assert "nothing was written" in message
    refuse_if_any([], "clean")
