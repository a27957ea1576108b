"""Per-host identity: what a built host carries that no copy of it may share.

An image is copied onto many hosts, so everything that makes one host itself
is taken out of it after the bake, and given back to each copy by its first
boot or by the follow-up deploy (docs/reference/images.md has the table):

- SSH host keys, ``/etc/machine-id`` (left empty: systemd makes one at boot),
  ``/var/lib/dbus/machine-id`` and systemd's random seed and credential key;
- the host name and ``/etc/hosts``;
- the gateway's TLS pair, CA certificate, configuration (it names the build
  host's address and the build's placeholder database), database password
  and token keys (the token secret stays with ``--keep-secrets``);
- PostgreSQL's TLS key, certificate and CA certificate, the CA in the system
  trust store, Debian's snakeoil pair with its hash link in ``/etc/ssl/certs``
  (named after the build host's name, it would dangle on every copy), and
  the files earlier applies kept (``*.pgf-previous``, ``*.pgf-rejected``);
- what the build's lab wrote: its SSH key in root's ``authorized_keys``, its
  apt proxy, ``sources.list``, sshd drop-in and ``resolv.conf``;
- what the build itself left: logs (truncated, so owners and modes stay),
  the journal, apt's lists and caches, ``/tmp``, shell histories.

Database role passwords are taken out on the running host before it stops
(see :mod:`pgfortress.image.bake`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pgfortress.lab.hostroot import write_into

from ._errors import ImageError

__all__ = [
    "GATEWAY_IDENTITY",
    "PLACEHOLDER_PASSWORD",
    "IdentityPlan",
    "clean_root",
    "identity_plan",
]

STOCK_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

NO_SOURCES = (
    "# pgfortress image: no package source is baked in; give this host your own\n"
    "# mirror (sources.list or sources.list.d/) when you deploy it.\n"
)


# What a gateway deploy writes to /etc/pgfortress-gateway: all of it is the
# host's or the deployment's, given back by the follow-up deploy.
GATEWAY_IDENTITY = (
    "tls.key",
    "tls.crt",
    "ca.crt",
    "gateway.toml",
    "db-password",
    "jwt-secret",
    "jwt-public.pem",
    "jwks-ca.crt",
)
# The bake's gateway names this entry of the build's throwaway secret store
# as its database password (no database is there yet); the file goes.
PLACEHOLDER_PASSWORD = "image/authenticator"  # noqa: S105 - a store entry name
# Kept by --keep-secrets: the token secret every copy shares (the database
# password of a bake names the bake's placeholder, so it never stays).
_GATEWAY_KEPT = frozenset({"jwt-secret"})


# apt's lists directory keeps these: they belong to apt, not to the build.
_KEEP_IN_EMPTIED = {"lock", "partial"}


@dataclass(frozen=True)
class IdentityPlan:
    """Paths, relative to the root, to remove, truncate or write in one image."""

    remove: tuple[str, ...]
    """Glob patterns: every match goes (a directory with what it holds)."""
    empty_dirs: tuple[str, ...]
    """Directories emptied, the directory itself kept with its owner and mode."""
    truncate_under: tuple[str, ...]
    """Directories whose regular files are cut to zero bytes (logs)."""
    write: tuple[tuple[str, str, int], ...]
    """(path, text, mode) written in place of what the build left."""
    dangling_links_in: tuple[str, ...] = ()
    """Directories whose symlinks go when what they name was removed (one hop,
    read inside the root): hash links such as ``<hash>.0`` of the snakeoil."""


def identity_plan(
    postgres_version: int | None, gateway: bool = False, keep_secrets: bool = False
) -> IdentityPlan:
    """What :func:`clean_root` does to an image of this PostgreSQL version
    (None: no PostgreSQL), with the gateway's files when ``gateway``."""
    remove = [
        "etc/ssh/ssh_host_*",
        "etc/ssh/sshd_config.d/pgfortress-lab.conf",
        "var/lib/dbus/machine-id",
        "var/lib/systemd/random-seed",
        "var/lib/systemd/credential.secret",
        "root/.ssh/authorized_keys",
        "etc/apt/apt.conf.d/01pgfortress-proxy",
        "etc/apt/sources.list.d/*",
        "var/log/journal/*",
        "var/log/*.gz",
        "var/log/*.[0-9]",
        "var/log/*/*.gz",
        "var/log/*/*.[0-9]",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/cache/debconf/*-old",
        "usr/local/share/ca-certificates/pgfortress-ca.crt",
        "etc/ssl/certs/pgfortress-ca.pem",
        "etc/ssl/private/ssl-cert-snakeoil.key",
        "etc/ssl/certs/ssl-cert-snakeoil.pem",
        "root/.cache",
        *(
            f"{home}/{history}"
            for home in ("root", "home/*", "var/lib/postgresql")
            for history in (
                ".bash_history",
                ".python_history",
                ".psql_history",
                ".lesshst",
                ".viminfo",
                ".wget-hsts",
            )
        ),
    ]
    if postgres_version is not None:
        config = f"etc/postgresql/{postgres_version}/main"
        remove += [
            f"{config}/tls/server.key",
            f"{config}/tls/server.crt",
            f"{config}/tls/ca.crt",
            f"{config}/**/*.pgf-previous",
            f"{config}/**/*.pgf-rejected",
            f"{config}/**/*.pgf-candidate",
            f"{config}/**/*.pgf-restore",
        ]
    if gateway:
        remove += [
            f"etc/pgfortress-gateway/{name}"
            for name in GATEWAY_IDENTITY
            if not (keep_secrets and name in _GATEWAY_KEPT)
        ]
        remove.append("var/lib/pgfortress-gateway/*")
    return IdentityPlan(
        remove=tuple(remove),
        empty_dirs=("tmp", "var/tmp", "var/lib/apt/lists"),
        truncate_under=("var/log",),
        dangling_links_in=("etc/ssl/certs",),
        write=(
            ("etc/machine-id", "", 0o444),
            ("etc/hostname", "localhost\n", 0o644),
            ("etc/hosts", STOCK_HOSTS, 0o644),
            ("etc/resolv.conf", "", 0o644),
            ("etc/apt/sources.list", NO_SOURCES, 0o644),
        ),
    )


def clean_root(root: Path, plan: IdentityPlan) -> list[str]:
    """Apply ``plan`` to the stopped host's root; the paths removed, sorted.

    Never follows a symlink out of ``root``: links are removed as links, and
    every match is checked to lie inside the root first.
    """
    real_root = root.resolve()
    removed: list[str] = []
    for pattern in plan.remove:
        for path in sorted(root.glob(pattern)):
            _inside(real_root, path)
            _remove(path)
            removed.append(str(path.relative_to(root)))
    for relative in plan.dangling_links_in:
        removed += _remove_dangling_links(root, relative)
    for relative in plan.empty_dirs:
        directory = root / relative
        if directory.is_dir() and not directory.is_symlink():
            for child in directory.iterdir():
                if child.name in _KEEP_IN_EMPTIED:
                    continue
                _remove(child)
                removed.append(str(child.relative_to(root)))
    for relative in plan.truncate_under:
        _truncate_files(root / relative)
    for relative, text, mode in plan.write:
        write_into(root, relative, text, mode)
    return sorted(removed)


def _remove_dangling_links(root: Path, relative: str) -> list[str]:
    """Remove the links in ``root/relative`` whose target is not in the root.

    The target is looked up inside the root (an absolute target names a path
    of the image, not of the build machine), one hop only, never followed.
    """
    directory = root / relative
    if directory.is_symlink() or not directory.is_dir():
        return []
    _inside(root.resolve(), directory)
    gone = []
    for link in sorted(directory.iterdir()):
        if not link.is_symlink():
            continue
        target = link.readlink()
        if target.is_absolute():
            target = root / target.relative_to("/")
        # lexists: the target itself, not what it links to in turn.
        if not os.path.lexists(directory / target):
            link.unlink()
            gone.append(str(link.relative_to(root)))
    return gone


def _inside(real_root: Path, path: Path) -> None:
    parent = path.parent.resolve()
    if not parent.is_relative_to(real_root):
        raise ImageError(f"{path} leads outside the image root {real_root}")


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    for child in path.iterdir():
        _remove(child)
    path.rmdir()


def _truncate_files(top: Path) -> None:
    if not top.is_dir() or top.is_symlink():
        return
    for directory, _, names in os.walk(top):
        for name in names:
            path = Path(directory, name)
            if stat.S_ISREG(path.lstat().st_mode):
                with path.open("r+b") as handle:
                    handle.truncate(0)
