"""The last look before an image leaves the machine: no private key, no secret.

Two kinds of finding, each naming the file:

- a PEM private key block anywhere (any ``-----BEGIN ... PRIVATE KEY-----``
  with its END line, in any regular file up to 16 MiB), except in a file a
  Debian package ships unchanged (its md5 is the one in
  ``/var/lib/dpkg/info/*.md5sums``): such keys are public test vectors, such
  as the known-answer keys inside libgnutls;
- a file the toolkit writes only with a secret in it (TLS keys of PostgreSQL,
  the gateway, slapd; the gateway's secrets and its configuration, which may
  hold the Redis password; Redis's password; SSH host keys), whatever it
  holds.

Each finding names its control, ``image:private-key`` or
``image:secret-file``, and says when the file is readable by everyone. An
image built with ``--keep-secrets`` may keep the gateway's token secret
(:data:`KEPT_WITH_SECRETS`); a private key never stays.

The same rules read a root directory (before export) or a tarball (before a
verification boots it), so an image made elsewhere is held to them too.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
import subprocess
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ._errors import ImageError

__all__ = [
    "KEPT_WITH_SECRETS",
    "MAX_SCANNED",
    "PRIVATE_KEY",
    "SECRET_FILE",
    "SECRET_FILES",
    "Finding",
    "findings_in",
    "kept_on_purpose",
    "packaged_md5s",
    "refuse_if_any",
    "scan_root",
    "scan_tarball",
]

MAX_SCANNED = 16 * 1024 * 1024

# The two rules a finding breaks, as the refusal names them.
PRIVATE_KEY = "image:private-key"
SECRET_FILE = "image:secret-file"  # noqa: S105 - a rule name

_PEM_KEY = re.compile(
    rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----\s+"
    rb"[A-Za-z0-9+/=:,\-\s]{16,}?"
    rb"-----END \1PRIVATE KEY-----"
)

# Paths (relative to the root, fnmatch patterns) where the toolkit or the
# system keeps a secret; such a file may not be in an image at all.
SECRET_FILES = (
    "etc/ssh/ssh_host_*_key",
    "etc/postgresql/*/main/tls/server.key*",
    "etc/pgfortress-gateway/tls.key*",
    "etc/pgfortress-gateway/*secret*",
    "etc/pgfortress-gateway/*password*",
    "etc/pgfortress-gateway/gateway.toml",
    "etc/ldap/tls/server.key*",
    "etc/redis/redis.conf",
    "etc/ssl/private/*",
    "root/.ssh/authorized_keys",
    "root/.ssh/id_*",
    "var/lib/systemd/credential.secret",
    "run/pgfortress/*",
)

# Secret files an image may keep when built with --keep-secrets: the token
# secret its copies share, never a private key (PEM keys are found whatever
# the path).
KEPT_WITH_SECRETS = ("etc/pgfortress-gateway/jwt-secret",)


@dataclass(frozen=True)
class Finding:
    """One file that may not leave in an image, and why."""

    path: str
    reason: str
    md5: str | None = None
    """For a key found in the content: the file's md5, to match packaged files."""
    control: str = SECRET_FILE

    def __str__(self) -> str:
        return f"/{self.path}: {self.reason} [{self.control}]"


def findings_in(
    path: str, data: bytes | None, mode: int | None = None
) -> list[Finding]:
    """What is wrong with one regular file (``data`` None: too large to read).

    ``mode`` (permission bits), when given, adds whether everyone may read it.
    """
    everyone = ""
    if mode is not None and mode & stat.S_IROTH:
        everyone = f", readable by everyone ({stat.S_IMODE(mode):04o})"
    found = []
    for pattern in SECRET_FILES:
        if fnmatch.fnmatchcase(path, pattern):
            found.append(Finding(path, f"a secret file ({pattern}){everyone}"))
            break
    if data is not None:
        match = _PEM_KEY.search(data)
        if match:
            kind = match.group(1).decode().strip() or "PKCS#8"
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            reason = f"holds a PEM private key ({kind}){everyone}"
            found.append(Finding(path, reason, md5, PRIVATE_KEY))
    return found


_File = tuple[str, bytes | None, int]


def _files_in(root: Path) -> Iterator[_File]:
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            full = Path(directory, name)
            info = full.lstat()
            if not stat.S_ISREG(info.st_mode):
                continue
            relative = str(full.relative_to(root))
            data = full.read_bytes() if info.st_size <= MAX_SCANNED else None
            yield relative, data, info.st_mode


def scan_root(root: Path, keep_secrets: bool = False) -> list[Finding]:
    """Every finding under a root directory, in path order."""
    return _scan(_files_in(root), keep_secrets)


def _tar_members(tarball: Path) -> Iterator[_File]:
    with subprocess.Popen(
        ["zstd", "-dcq", str(tarball)], stdout=subprocess.PIPE
    ) as unzstd:
        assert unzstd.stdout is not None
        with tarfile.open(fileobj=unzstd.stdout, mode="r|") as archive:
            for member in archive:
                if not member.isreg():
                    continue
                relative = os.path.normpath(member.name).removeprefix("/")
                data = None
                if member.size <= MAX_SCANNED:
                    extracted = archive.extractfile(member)
                    data = extracted.read() if extracted else b""
                yield relative, data, member.mode
    if unzstd.returncode != 0:
        raise ImageError(
            f"{tarball}: zstd could not read it (exit {unzstd.returncode})"
        )


def scan_tarball(tarball: Path, keep_secrets: bool = False) -> list[Finding]:
    """Every finding in a zstd root filesystem tarball, in archive order."""
    try:
        return _scan(_tar_members(tarball), keep_secrets)
    except tarfile.TarError as error:
        raise ImageError(f"{tarball}: not a readable tar archive ({error})") from None


def packaged_md5s(md5sums: str) -> dict[str, str]:
    """Path (relative to the root) → md5, from one dpkg ``*.md5sums`` file."""
    packaged = {}
    for line in md5sums.splitlines():
        digest, _, path = line.partition("  ")
        if path:
            packaged[path.strip()] = digest.strip()
    return packaged


def kept_on_purpose(finding: Finding, keep_secrets: bool) -> bool:
    """Whether ``--keep-secrets`` allows this finding (never a private key)."""
    return (
        keep_secrets
        and finding.control == SECRET_FILE
        and finding.path in KEPT_WITH_SECRETS
    )


def _scan(files: Iterable[_File], keep_secrets: bool) -> list[Finding]:
    found: list[Finding] = []
    packaged: dict[str, str] = {}
    for path, data, mode in files:
        if fnmatch.fnmatchcase(path, "var/lib/dpkg/info/*.md5sums") and data:
            packaged.update(packaged_md5s(data.decode("utf-8", "replace")))
        found += findings_in(path, data, mode)
    # A key inside a file exactly as its Debian package ships it is public.
    return [
        f
        for f in found
        if (f.md5 is None or packaged.get(f.path) != f.md5)
        and not kept_on_purpose(f, keep_secrets)
    ]


def refuse_if_any(findings: list[Finding], where: str) -> None:
    """Raise naming every finding; an image with one is never exported."""
    if findings:
        listed = "\n".join(f"  {finding}" for finding in findings)
        controls = ", ".join(sorted({finding.control for finding in findings}))
        raise ImageError(
            f"{where}: refusing to export, {len(findings)} file(s) hold a private "
            f"key or secret (failed controls: {controls}):\n{listed}\nnothing was "
            "written; if the operator wants secrets in the image, that is "
            "--keep-secrets (never private keys)"
        )
