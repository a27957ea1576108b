"""Verification: an image is proved on a fresh host before its manifest exists.

1. The tarball is scanned again (:mod:`.scan`): an image from anywhere is
   held to the same rule as one built here.
2. It boots as a fresh lab host (``images={"db1": tarball}``); the lab gives
   it a host name, addresses and an SSH host key, the first-boot unit the rest.
3. As booted, before any deploy: the host checks, held to what the image
   promises (inventory stage ``image``), must pass, only
   :data:`NEEDS_IDENTITY` may fail there; and no database role may have a
   password (unless it was built with ``--keep-secrets``).
4. The follow-up deploy gives it its identity (stage ``identity``: TLS pair
   from the lab's CA, eth0, a network rule, passwords), twice: the second run
   must change nothing.
5. The host checks again, held to the deployed inventory: every control
   applicable must pass. Its JUnit and HTML reports stay next to the image.

Only then is the manifest written. Any failure raises :class:`ImageError`
naming the failed controls, and no manifest exists afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab.progress import Progress

from ._errors import ImageError
from ._run import AuditOutcome, audit, deploy, on_host
from .bake import HOST, deploy_file
from .export import Artifacts, read_build_record
from .manifest import (
    artifact_digests,
    manifest_document,
    parse_packages,
    write_manifest,
)
from .scan import refuse_if_any, scan_tarball

__all__ = ["NEEDS_IDENTITY", "verify"]

# Controls an image cannot pass before its follow-up deploy, and why: login
# database roles exist but their passwords are per host (devsec:postgres-06).
NEEDS_IDENTITY = {"devsec:postgres-06": "login roles get their passwords by deploy"}

_PASSWORDS_SQL = (
    "SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM pg_authid "
    "WHERE rolpassword IS NOT NULL"
)


def _summary(outcome: AuditOutcome) -> dict[str, Any]:
    return {"counts": outcome.counts(), "failing": outcome.failing()}


def _failure(stage: str, outcome: AuditOutcome, allowed: Mapping[str, str]) -> str:
    """Why an audit stage fails the image, or an empty string."""
    failing = [c for c in outcome.failing() if c not in allowed]
    unnamed = outcome.unnamed_failures()
    if not failing and not unnamed:
        return ""
    parts = []
    if failing:
        parts.append(f"failed controls: {', '.join(failing)}")
    if unnamed:
        parts.append("failed host checks naming no control: " + "; ".join(unnamed))
    return f"{stage}: " + "; ".join(parts)


def verify(
    files: Artifacts,
    lab: str,
    repo: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Verify the image in ``files``; write and return its manifest."""
    files.manifest.unlink(missing_ok=True)
    record = read_build_record(files.build)
    with progress.step(f"scanning {files.rootfs.name} for private keys and secrets"):
        refuse_if_any(scan_tarball(files.rootfs), str(files.rootfs))
    deploy_path = deploy_file(repo, record.role, record.database_roles)
    state = labs.up(
        lab, [HOST], progress, platform=record.platform, images={HOST: files.rootfs}
    )
    try:
        work = state.dir / "image"
        packages = parse_packages(
            on_host(state, HOST, "dpkg-query -W -f '${Package}\\t${Version}\\n'")
        )
        with (
            tempfile.TemporaryDirectory(prefix="pgfortress-image-") as scratch,
            progress.step("host checks on the image as booted"),
        ):
            booted = audit(
                state,
                "image",
                work,
                record.database_roles,
                Path(scratch, "booted.xml"),
                Path(scratch, "booted.html"),
            )
        problem = _failure("the image as booted", booted, NEEDS_IDENTITY)
        if problem:
            raise ImageError(f"verification failed: {problem}; no manifest written")
        # After the audit: it has shown that PostgreSQL runs and answers.
        if not record.keep_secrets:
            _no_passwords(state)
        tls.init_ca(state.dir / "ca", f"pgfortress image check {lab} CA")
        with progress.step("follow-up deploy: the host's identity"):
            first = deploy(state, deploy_path, "identity", work, record.database_roles)
            second = deploy(state, deploy_path, "identity", work, record.database_roles)
        if second.changed:
            raise ImageError(
                f"verification failed: the second follow-up deploy changed "
                f"{second.changed} operation(s); it must change nothing:\n"
                f"{second.output[-3000:]}"
            )
        with progress.step("host checks after the follow-up deploy"):
            deployed = audit(
                state,
                "identity",
                work,
                record.database_roles,
                files.junit,
                files.html,
            )
        problem = _failure("after the follow-up deploy", deployed, {})
        if problem:
            raise ImageError(
                f"verification failed: {problem}; reports: {files.junit}, "
                f"{files.html}; no manifest written"
            )
    finally:
        labs.down(lab, progress)
    document = manifest_document(
        record,
        artifact_digests(files),
        packages,
        {
            "booted": _summary(booted)
            | {"allowed_to_fail": dict(sorted(NEEDS_IDENTITY.items()))},
            "deployed": _summary(deployed)
            | {
                "follow_up_changes": [first.changed, second.changed],
                "junit": files.junit.name,
                "html": files.html.name,
            },
        },
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    write_manifest(files.manifest, document)
    return document


def _no_passwords(state: labs.LabState) -> None:
    holders = on_host(
        state,
        HOST,
        "runuser -u postgres -- env -C / psql -X -A -t -d postgres -c "
        f'"{_PASSWORDS_SQL}"',
    ).strip()
    if holders:
        raise ImageError(
            f"verification failed: the image carries passwords of database roles "
            f"{holders}; build it again (only --keep-secrets keeps them); no "
            "manifest written"
        )
