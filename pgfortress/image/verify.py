"""Verification: an image is proved on a fresh host before its manifest exists.

1. The tarball is scanned again (:mod:`.scan`): an image from anywhere is
   held to the same rule as one built here.
2. It boots as a fresh lab host (``images={"db1": tarball}``); the lab gives
   it a host name, addresses and an SSH host key, the first-boot unit the rest.
   A gateway image boots as ``gw1`` next to a fresh ``db1``; see
   :mod:`.verify_gateway` for its steps.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab.progress import Progress

from ._errors import ImageError
from ._run import audit, deploy, on_host
from ._verdict import DPKG_QUERY, failure, require_no_change, summary
from .bake import HOSTS, deploy_file
from .export import Artifacts, BuildRecord, read_build_record
from .manifest import (
    artifact_digests,
    manifest_document,
    parse_packages,
    write_manifest,
)
from .scan import refuse_if_any, scan_tarball
from .verify_gateway import verify_gateway

__all__ = ["NEEDS_IDENTITY", "verify"]

HOST = HOSTS["db"]

# Controls an image cannot pass before its follow-up deploy, and why: login
# database roles exist but their passwords are per host (devsec:postgres-06).
NEEDS_IDENTITY = {"devsec:postgres-06": "login roles get their passwords by deploy"}

_PASSWORDS_SQL = (
    "SELECT string_agg(rolname, ', ' ORDER BY rolname) FROM pg_authid "
    "WHERE rolpassword IS NOT NULL"
)


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
        found = scan_tarball(files.rootfs, record.keep_secrets)
        refuse_if_any(found, str(files.rootfs))
    if record.role == "gateway":
        packages, audits = verify_gateway(record, files, lab, repo, progress)
    else:
        packages, audits = _verify_db(record, files, lab, repo, progress)
    document = manifest_document(
        record,
        artifact_digests(files),
        packages,
        audits,
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    write_manifest(files.manifest, document)
    return document


def _verify_db(
    record: BuildRecord,
    files: Artifacts,
    lab: str,
    repo: Path,
    progress: Progress,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Steps 2 to 5 for a db image: its packages and the audits' summaries."""
    deploy_path = deploy_file(repo, record.role, record.database_roles)
    state = labs.up(
        lab, [HOST], progress, platform=record.platform, images={HOST: files.rootfs}
    )
    try:
        work = state.dir / "image"
        packages = parse_packages(on_host(state, HOST, DPKG_QUERY))
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
        problem = failure("the image as booted", booted, NEEDS_IDENTITY)
        if problem:
            raise ImageError(f"verification failed: {problem}; no manifest written")
        # After the audit: it has shown that PostgreSQL runs and answers.
        if not record.keep_secrets:
            _no_passwords(state)
        tls.init_ca(state.dir / "ca", f"pgfortress image check {lab} CA")
        with progress.step("follow-up deploy: the host's identity"):
            first = deploy(state, deploy_path, "identity", work, record.database_roles)
            second = deploy(state, deploy_path, "identity", work, record.database_roles)
        require_no_change(second)
        with progress.step("host checks after the follow-up deploy"):
            deployed = audit(
                state,
                "identity",
                work,
                record.database_roles,
                files.junit,
                files.html,
            )
        problem = failure("after the follow-up deploy", deployed, {})
        if problem:
            raise ImageError(
                f"verification failed: {problem}; reports: {files.junit}, "
                f"{files.html}; no manifest written"
            )
    finally:
        labs.down(lab, progress)
    return packages, {
        "booted": summary(booted)
        | {"allowed_to_fail": dict(sorted(NEEDS_IDENTITY.items()))},
        "deployed": summary(deployed)
        | {
            "follow_up_changes": [first.changed, second.changed],
            "junit": files.junit.name,
            "html": files.html.name,
        },
    }


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
