"""The bake: a fresh lab host, the same deploy a user runs, then no identity.

1. A one-host lab boots from the platform's fresh root filesystem.
2. pyinfra applies ``deploys/postgres.py`` (``deploys/site.py`` with a
   database roles spec) with the image inventory, stage ``image``
   (:mod:`pgfortress.image.lab_inventory`): loopback only, no network rule,
   a TLS pair from a CA made for this build and thrown away with the lab.
3. On the running host: database role passwords are removed (unless
   ``--keep-secrets``), the build CA leaves the trust store, apt's cache goes.
4. The host is stopped and its root cleaned of identity (:mod:`.identity`);
   the first-boot unit is added (:mod:`.firstboot`).
5. The root is scanned (:mod:`.scan`) and exported only if nothing is found.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import machine
from pgfortress.lab.paths import LabLayout
from pgfortress.lab.progress import Progress

from ._errors import ImageError
from ._run import deploy, on_host
from .export import Artifacts, BuildRecord, export
from .firstboot import install_first_boot
from .identity import clean_root, identity_plan
from .scan import refuse_if_any, scan_root

__all__ = [
    "HOST",
    "BakeOptions",
    "bake_and_export",
    "deploy_file",
    "require_clean_shutdown",
]

HOST = "db1"

# Run by root over the socket; every statement on its own (VACUUM FULL may
# not run inside a transaction). Old row versions of pg_authid go with the
# rewrite; the checkpoint writes the result to the data files.
_DROP_PASSWORDS = (
    "DO $$DECLARE r record; BEGIN FOR r IN SELECT rolname FROM pg_authid "
    "WHERE rolpassword IS NOT NULL LOOP EXECUTE format('ALTER ROLE %I "
    "PASSWORD NULL', r.rolname); END LOOP; END$$",
    "VACUUM FULL pg_authid",
    "CHECKPOINT",
)
_PSQL = "runuser -u postgres -- env -C / psql -X -q -v ON_ERROR_STOP=1"


@dataclass(frozen=True)
class BakeOptions:
    """What ``pgfortress image build`` was asked for."""

    role: str
    platform: str
    lab: str
    repo: Path
    database_roles: str | None
    keep_secrets: bool


def deploy_file(repo: Path, role: str, database_roles: str | None) -> Path:
    """The deploy of a clone that a user runs for this role."""
    name = "site.py" if database_roles else "postgres.py"
    path = repo / "deploys" / name
    if not path.is_file():
        raise ImageError(
            f"{path}: missing; run pgfortress image from a clone of pgfortress "
            "(the deploys and roles live there), as the README says"
        )
    return path


def require_clean_shutdown(root: Path, postgres_version: int | None) -> None:
    """Refuse a root whose PostgreSQL did not stop cleanly.

    A clean shutdown removes ``postmaster.pid``. A copy of a stale one can
    name a pid that another process has on the booted copy, and PostgreSQL
    then refuses to start; the data files may also need crash recovery.
    """
    if postgres_version is None:
        return
    pid_file = root / f"var/lib/postgresql/{postgres_version}/main/postmaster.pid"
    if pid_file.exists():
        raise ImageError(
            f"/{pid_file.relative_to(root)} is still there: PostgreSQL did not "
            "shut down cleanly when the build host stopped; nothing was "
            "exported, build again (see the host's console log if it repeats)"
        )


def _in_host_cleanup(state: labs.LabState, keep_secrets: bool) -> None:
    if not keep_secrets:
        statements = " ".join(f"-c {shlex.quote(s)}" for s in _DROP_PASSWORDS)
        on_host(state, HOST, f"{_PSQL} -d postgres {statements}")
    on_host(
        state,
        HOST,
        "rm -f /usr/local/share/ca-certificates/pgfortress-ca.crt && "
        "update-ca-certificates --fresh >/dev/null && apt-get clean",
    )


def bake_and_export(
    options: BakeOptions,
    record: BuildRecord,
    files: Artifacts,
    progress: Progress,
) -> list[str]:
    """Build the image into ``files``; the paths the cleaning removed."""
    deploy_path = deploy_file(options.repo, options.role, options.database_roles)
    state = labs.up(options.lab, [HOST], progress, platform=options.platform)
    try:
        work = state.dir / "image"
        work.mkdir(mode=0o700, exist_ok=True)
        tls.init_ca(work / "ca", f"pgfortress image build {options.lab} (thrown away)")
        with progress.step(f"baking: {deploy_path.name} on {HOST}"):
            run = deploy(state, deploy_path, "image", work, options.database_roles)
        progress.say(f"bake deploy: {run.changed} of {run.operations} operations ran")
        with progress.step("removing passwords, the build CA and apt's cache"):
            _in_host_cleanup(state, options.keep_secrets)
        if options.keep_secrets and (work / "secrets").is_dir():
            kept = files.rootfs.with_name(
                files.rootfs.name.removesuffix(".rootfs.tar.zst") + ".secrets"
            )
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(work / "secrets", kept)
            kept.chmod(0o700)
            progress.say(f"--keep-secrets: the passwords baked in are in {kept}")
        with progress.step(f"stopping {HOST}"):
            # systemd-nspawn asks the host's init for a clean poweroff.
            machine.stop(LabLayout(state.dir), timeout=60)
        root = LabLayout(state.dir).host_root(HOST)
        require_clean_shutdown(root, record.postgres_version)
        with progress.step("removing per-host identity from the root"):
            removed = clean_root(root, identity_plan(record.postgres_version))
            install_first_boot(root, record.postgres_version)
        with progress.step("scanning for private keys and secrets"):
            refuse_if_any(scan_root(root), str(files.rootfs))
        with progress.step(f"exporting {files.rootfs.name} and {files.oci.name}"):
            export(root, files, record)
    finally:
        labs.down(options.lab, progress)
    return removed
