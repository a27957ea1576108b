"""The two artifacts of a build, and the record that travels with them.

``<stem>.rootfs.tar.zst`` is the lab's root filesystem format (what
``pgfortress lab up --image`` and the lab cache read); ``<stem>.oci.tar`` is
an OCI image archive of the same tree. ``<stem>.build.json`` says how they
were made, so that ``pgfortress image verify`` knows what to check.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ._errors import ImageError
from .oci import write_oci_archive

__all__ = [
    "TAR_OPTIONS",
    "Artifacts",
    "BuildRecord",
    "artifacts_for",
    "artifacts_from_rootfs",
    "export",
    "pack_rootfs",
    "read_build_record",
    "sha256_of",
    "write_build_record",
]

TAR_OPTIONS = ("--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*")


@dataclass(frozen=True)
class BuildRecord:
    """How an image was built: what verification needs to know about it."""

    role: str
    platform: str
    postgres_version: int | None
    commit: str
    created: str
    keep_secrets: bool
    database_roles: str | None


@dataclass(frozen=True)
class Artifacts:
    """Where the files of one image go, all in one directory."""

    rootfs: Path
    oci: Path
    build: Path
    manifest: Path
    junit: Path
    html: Path


def artifacts_for(out: Path, role: str, platform: str) -> Artifacts:
    stem = out / f"pgfortress-{role}-{platform}"
    return artifacts_from_rootfs(stem.with_name(stem.name + ".rootfs.tar.zst"))


def artifacts_from_rootfs(rootfs: Path) -> Artifacts:
    """The other files' names, from the root filesystem tarball's."""
    if not rootfs.name.endswith(".rootfs.tar.zst"):
        raise ImageError(
            f"{rootfs}: not an image tarball of pgfortress (its name ends in "
            ".rootfs.tar.zst); give the file `pgfortress image build` wrote"
        )
    stem = rootfs.with_name(rootfs.name.removesuffix(".rootfs.tar.zst"))
    return Artifacts(
        rootfs=rootfs,
        oci=stem.with_name(stem.name + ".oci.tar"),
        build=stem.with_name(stem.name + ".build.json"),
        manifest=stem.with_name(stem.name + ".manifest.json"),
        junit=stem.with_name(stem.name + ".audit.xml"),
        html=stem.with_name(stem.name + ".audit.html"),
    )


def pack_rootfs(root: Path, out: Path) -> None:
    """Pack a stopped host's root as the lab packs its root filesystem."""
    scratch = out.with_name(f".{out.name}.{os.getpid()}")
    argv = ["tar", *TAR_OPTIONS, "-C", str(root), "-cf", str(scratch), "."]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode != 0:
            raise ImageError(f"packing {root} failed: {result.stderr.strip()[-500:]}")
        scratch.replace(out)
    finally:
        scratch.unlink(missing_ok=True)


def export(root: Path, files: Artifacts, record: BuildRecord) -> None:
    """Write the tarball, the OCI archive and the build record."""
    pack_rootfs(root, files.rootfs)
    labels = {
        "org.opencontainers.image.title": f"pgfortress {record.role}",
        "org.opencontainers.image.created": record.created,
        "org.opencontainers.image.revision": record.commit,
        "dev.pgfortress.role": record.role,
        "dev.pgfortress.platform": record.platform,
    }
    write_oci_archive(
        files.rootfs,
        files.oci,
        f"pgfortress-{record.role}-{record.platform}",
        labels,
        record.created,
    )
    write_build_record(files.build, record)


def write_build_record(path: Path, record: BuildRecord) -> None:
    path.write_text(json.dumps(asdict(record), indent=2, sort_keys=True) + "\n")


def read_build_record(path: Path) -> BuildRecord:
    try:
        data = json.loads(path.read_text())
        return BuildRecord(**data)
    except FileNotFoundError:
        raise ImageError(
            f"{path}: missing; verify the tarball in the directory `pgfortress "
            "image build` wrote it to, with its .build.json next to it"
        ) from None
    except (ValueError, TypeError) as error:
        raise ImageError(f"{path}: not a build record ({error})") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
