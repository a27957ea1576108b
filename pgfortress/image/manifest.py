"""The manifest: written next to an image only once it passed verification.

It says what the image is (role, platform, the commit it was built from, the
packages in it), proves which files it means (sha256 of each artifact) and
carries the verdict (the audit's summary, with the JUnit and HTML reports
next to it). Its absence means the image was not verified.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .export import Artifacts, BuildRecord, sha256_of

__all__ = [
    "FORMAT",
    "artifact_digests",
    "manifest_document",
    "parse_packages",
    "write_manifest",
]

FORMAT = 1


def parse_packages(text: str) -> dict[str, str]:
    """``dpkg-query -W -f '${Package}\\t${Version}\\n'`` output as a mapping."""
    packages = {}
    for line in text.splitlines():
        name, _, version = line.partition("\t")
        if name.strip() and version.strip():
            packages[name.strip()] = version.strip()
    return dict(sorted(packages.items()))


def manifest_document(
    record: BuildRecord,
    digests: Mapping[str, str],
    packages: Mapping[str, str],
    audits: Mapping[str, Mapping[str, Any]],
    verified_at: str,
) -> dict[str, Any]:
    """The manifest's content; every input is already checked."""
    return {
        "format": FORMAT,
        "image": asdict(record),
        "artifacts": {name: {"sha256": digest} for name, digest in digests.items()},
        "packages": dict(packages),
        "verification": {"verified_at": verified_at, "audits": dict(audits)},
    }


def artifact_digests(files: Artifacts) -> dict[str, str]:
    """sha256 of each artifact the manifest vouches for, by file name."""
    paths = (files.rootfs, files.oci, files.build, files.junit, files.html)
    return {path.name: sha256_of(path) for path in paths}


def write_manifest(path: Path, document: Mapping[str, Any]) -> None:
    scratch = path.with_name(f".{path.name}.new")
    scratch.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    scratch.replace(path)
