"""The ``pgfortress image`` subcommands: build (bake, export, verify) and verify."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgfortress.lab.platforms import DEFAULT_PLATFORM, PLATFORMS, platform_named
from pgfortress.lab.progress import Progress

from ._errors import ImageError
from ._run import source_commit
from .bake import BakeOptions, bake_and_export
from .export import BuildRecord, artifacts_for, artifacts_from_rootfs
from .verify import verify

__all__ = ["ROLES", "add_image_command"]

ROLES = ("db", "gateway")


def add_image_command(commands: Any) -> None:
    """Add ``image build`` and ``image verify`` to the top-level subcommands."""
    image = commands.add_parser(
        "image",
        help="build hardened images and verify them on a lab host",
        description="Hardened root filesystem images: baked on a lab host with "
        "the same deploys as a live host, cleaned of per-host identity, exported "
        "as a zstd tarball and an OCI archive, verified on a fresh lab host; "
        "only a verified image gets a manifest. See docs/reference/images.md.",
    )
    verbs = image.add_subparsers(dest="image_command", required=True)
    build = verbs.add_parser("build", help="bake, export and verify an image")
    build.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="what it runs: db (hardened PostgreSQL) or gateway (the HTTP API)",
    )
    build.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        choices=sorted(PLATFORMS),
        help=f"Debian release (default {DEFAULT_PLATFORM})",
    )
    build.add_argument("--out", default="images", help="directory (default images/)")
    build.add_argument(
        "--database-roles",
        help="database roles spec to bake into a db image (passwords are not kept)",
    )
    build.add_argument(
        "--keep-secrets",
        action="store_true",
        help="keep the database role passwords (db) or the token secret (gateway) "
        "in the image, never private keys; they are copied next to it",
    )
    build.add_argument(
        "--no-verify",
        action="store_true",
        help="stop after the export: no verification, so no manifest",
    )
    build.add_argument("--lab", default="image", help="lab name (default image)")
    build.set_defaults(handler=_build)
    check = verbs.add_parser(
        "verify", help="verify a built image and write its manifest"
    )
    check.add_argument("rootfs", help="the .rootfs.tar.zst that build wrote")
    check.add_argument("--lab", default="image", help="lab name (default image)")
    check.set_defaults(handler=_verify)


def _build(args: argparse.Namespace) -> int:
    platform = platform_named(args.platform)
    repo = Path.cwd()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    roles = args.database_roles
    if roles is not None and args.role != "db":
        raise ImageError(
            f"--database-roles bakes database roles into a db image; a {args.role} "
            "image has no database (its follow-up deploy names the one it serves)"
        )
    if roles is not None and not Path(roles).is_file():
        raise ImageError(
            f"--database-roles {roles}: no such file; name a spec such as "
            "specs/example.yml"
        )
    files = artifacts_for(out, args.role, platform.name)
    for stale in (files.manifest, files.junit, files.html):
        stale.unlink(missing_ok=True)
    record = BuildRecord(
        role=args.role,
        platform=platform.name,
        postgres_version=platform.postgres_major if args.role == "db" else None,
        commit=source_commit(repo),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        keep_secrets=args.keep_secrets,
        database_roles=roles,
    )
    progress = Progress()
    options = BakeOptions(
        role=args.role,
        platform=platform.name,
        lab=args.lab,
        repo=repo,
        database_roles=roles,
        keep_secrets=args.keep_secrets,
    )
    removed = bake_and_export(options, record, files, progress)
    progress.say(f"identity removed: {len(removed)} paths; wrote {files.rootfs}")
    progress.say(f"wrote {files.oci}")
    if args.no_verify:
        progress.say("--no-verify: no verification, so no manifest")
        return 0
    verify(files, args.lab, repo, progress)
    progress.say(f"verified; wrote {files.manifest}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    files = artifacts_from_rootfs(Path(args.rootfs))
    if not files.rootfs.is_file():
        raise ImageError(f"{files.rootfs}: no such file")
    progress = Progress()
    verify(files, args.lab, Path.cwd(), progress)
    progress.say(f"verified; wrote {files.manifest}")
    return 0
