"""The bake: a fresh lab host, the same deploy a user runs, then no identity.

1. A one-host lab boots from the platform's fresh root filesystem: ``db1``
   for a db image, ``gw1`` for a gateway image.
2. pyinfra applies the role's deploy with the image inventory, stage
   ``image`` (:mod:`pgfortress.image.lab_inventory`). ``db``:
   ``deploys/postgres.py`` (``deploys/site.py`` with a database roles spec):
   loopback only, no network rule, a TLS pair from a CA made for this build
   and thrown away with the lab. ``gateway``: ``deploys/gateway.py``, the
   wheelhouse, venv, system user and sandboxed unit of a live deploy, with
   the service enabled but not started (its database is not known yet) and
   a configuration and secrets that only fill the role's needs: they name a
   placeholder database and come from the build's throwaway store and CA.
3. On the running host: database role passwords are removed (unless
   ``--keep-secrets``), the build CA leaves the trust store, apt's cache goes.
4. The host is stopped and its root cleaned of identity (:mod:`.identity`);
   the first-boot unit is added (:mod:`.firstboot`), and for a gateway the
   drop-in that keeps the service from starting until a deploy configures it.
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
from pgfortress.plan.gateway import GatewayLayout
from pgfortress.secrets import SecretStore

from ._errors import ImageError
from ._run import deploy, on_host
from .export import Artifacts, BuildRecord, export
from .firstboot import install_first_boot
from .identity import PLACEHOLDER_PASSWORD, clean_root, identity_plan
from .scan import refuse_if_any, scan_root

__all__ = [
    "HOSTS",
    "BakeOptions",
    "bake_and_export",
    "deploy_file",
    "require_clean_shutdown",
]

# The lab host that is baked, and later booted from the image, per role.
HOSTS = {"db": "db1", "gateway": "gw1"}
DEPLOYS = {"db": "postgres.py", "gateway": "gateway.py"}

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
    name = "site.py" if role == "db" and database_roles else DEPLOYS[role]
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


def _in_host_cleanup(state: labs.LabState, role: str, keep_secrets: bool) -> None:
    host = HOSTS[role]
    if role == "gateway":
        # The build CA went only to /etc/pgfortress-gateway, which the
        # cleaning empties; the trust store was not touched.
        on_host(state, host, "apt-get clean")
        return
    if not keep_secrets:
        statements = " ".join(f"-c {shlex.quote(s)}" for s in _DROP_PASSWORDS)
        on_host(state, host, f"{_PSQL} -d postgres {statements}")
    on_host(
        state,
        host,
        "rm -f /usr/local/share/ca-certificates/pgfortress-ca.crt && "
        "update-ca-certificates --fresh >/dev/null && apt-get clean",
    )


def _keep_secrets_next_to(files: Artifacts, role: str, store: Path) -> Path:
    """Copy what the image kept of the build's secret store next to it (0700)."""
    kept = files.rootfs.with_name(
        files.rootfs.name.removesuffix(".rootfs.tar.zst") + ".secrets"
    )
    shutil.rmtree(kept, ignore_errors=True)
    if role == "gateway":
        # Only the token secret stays in a gateway image.
        kept.mkdir(mode=0o700)
        shutil.copytree(store / "gateway", kept / "gateway")
    else:
        shutil.copytree(store, kept)
    kept.chmod(0o700)
    return kept


def bake_and_export(
    options: BakeOptions,
    record: BuildRecord,
    files: Artifacts,
    progress: Progress,
) -> list[str]:
    """Build the image into ``files``; the paths the cleaning removed."""
    role, host = options.role, HOSTS[options.role]
    deploy_path = deploy_file(options.repo, role, options.database_roles)
    state = labs.up(options.lab, [host], progress, platform=options.platform)
    try:
        work = state.dir / "image"
        work.mkdir(mode=0o700, exist_ok=True)
        tls.init_ca(work / "ca", f"pgfortress image build {options.lab} (thrown away)")
        if role == "gateway":
            SecretStore(work / "secrets").get_or_create(PLACEHOLDER_PASSWORD)
        with progress.step(f"baking: {deploy_path.name} on {host}"):
            run = deploy(
                state, deploy_path, "image", work, options.database_roles, role
            )
        progress.say(f"bake deploy: {run.changed} of {run.operations} operations ran")
        with progress.step("removing passwords, the build CA and apt's cache"):
            _in_host_cleanup(state, role, options.keep_secrets)
        if options.keep_secrets and (work / "secrets").is_dir():
            kept = _keep_secrets_next_to(files, role, work / "secrets")
            progress.say(f"--keep-secrets: the secrets baked in are in {kept}")
        with progress.step(f"stopping {host}"):
            # systemd-nspawn asks the host's init for a clean poweroff.
            machine.stop(LabLayout(state.dir), timeout=60)
        root = LabLayout(state.dir).host_root(host)
        require_clean_shutdown(root, record.postgres_version)
        gateway = role == "gateway"
        plan = identity_plan(record.postgres_version, gateway, options.keep_secrets)
        with progress.step("removing per-host identity from the root"):
            removed = clean_root(root, plan)
            install_first_boot(
                root,
                record.postgres_version,
                GatewayLayout().config if gateway else None,
            )
        with progress.step("scanning for private keys and secrets"):
            found = scan_root(root, options.keep_secrets)
            refuse_if_any(found, str(files.rootfs))
        with progress.step(f"exporting {files.rootfs.name} and {files.oci.name}"):
            export(root, files, record)
    finally:
        labs.down(options.lab, progress)
    return removed
