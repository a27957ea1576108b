"""Provisioning role: the pgfortress gateway as a sandboxed systemd service.

Inventory data read: ``gateway_database`` (host, dbname, user,
password_secret), ``gateway_api``, ``gateway_listen``, ``gateway_port``,
``gateway_ca_dir``, ``gateway_cors_origins``, ``gateway_limits``,
``gateway_allowed_networks``, ``gateway_start``, ``pgfortress_secrets_dir``
(see docs/reference/gateway.md).

What changes on the host: ``python3-venv`` is installed; a system user
``pgfortress-gw``; a wheelhouse built on the control machine is uploaded to
/opt/pgfortress-gateway/wheels and installed into a venv there without any
package index; /etc/pgfortress-gateway holds the configuration, the TLS pair
issued by the CA, the CA certificate, the database password and the JWT
secret (secrets 0640 root:pgfortress-gw); a sandboxed unit runs the service.
It restarts only when its code, configuration or secrets changed.

With ``gateway_allowed_networks`` (the clients' networks) the unit exchanges
packets only with loopback, those networks, and the database and Redis hosts
when they are named by address (see ``pgfortress.plan.gateway.address_filter``).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from pgfortress import tls
from pgfortress.errors import PgFortressError, SpecError
from pgfortress.plan.gateway import (
    WHEEL_LISTING,
    GatewayLayout,
    address_filter,
    host_python_problem,
    render_gateway_config,
    render_gateway_unit,
    wheel_archive,
    wheels_to_upload,
)
from pgfortress.secrets import Secret, SecretStore
from pgfortress.spec.gateway import GatewayHostSpec, gateway_from_host_data

from .operations import secret_file, unpack_archive
from .package_lists import refresh_package_lists

__all__ = ["gateway"]

REPO = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "python3 -c 'import platform; print(platform.python_version())'"
WHEELHOUSE_CACHE = Path("/var/cache/pgfortress/wheelhouse")
# What the wheelhouse holds: part of its cache key.
WHEELHOUSE_SPEC = "pgfortress-gateway[redis]"
# pip download evaluates python_version but not python_full_version markers
# for the target interpreter: redis-py needs async-timeout before 3.11.3
# (Debian 12 ships 3.11.2). Extra wheels are harmless; pip picks what it needs.
PATCH_LEVEL_EXTRAS = ("async-timeout>=4.0.3",)
LAYOUT = GatewayLayout()
JWT_KEY_FILES = frozenset({"jwt-secret", "jwt-public.pem", "jwks-ca.crt"})


@deploy("pgfortress gateway")
def gateway() -> None:
    try:
        data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
        spec = gateway_from_host_data(host.name, data)
        wheels = build_wheelhouse(_host_python())
        ca = tls.load_ca(spec.ca_dir)
        issued = tls.ensure_server_certificate(
            ca,
            spec.ca_dir / "issued",
            host.name,
            dns_names=sorted({host.name, *spec.dns_names}),
            ip_addresses=[spec.listen],
        )
        store = SecretStore(spec.secrets_dir)
        password = store.get(spec.database.password_secret)
        jwt_secret = (
            store.get_or_create("gateway/jwt-secret", length=48)
            if spec.jwt.generated_secret
            else None
        )
        jwt_files = _jwt_files(spec)
        redis_name = spec.limits.redis_password_secret
        redis_password = store.get(redis_name) if redis_name else None
    except PgFortressError as error:
        raise DeployError(str(error)) from error

    installed = _install(wheels)
    config = Secret(render_gateway_config(spec, LAYOUT, redis_password))
    changed = _configure(issued, ca.cert_pem(), config, password, jwt_secret, jwt_files)
    filtered = spec.model_copy(update={"allowed_networks": address_filter(spec)})
    unit = files.put(
        name="Sandboxed systemd unit",
        src=StringIO(render_gateway_unit(filtered, LAYOUT)),
        dest=LAYOUT.unit,
        mode="644",
    )
    if not spec.start:
        # An image bake: everything in place and enabled, nothing running.
        systemd.service(
            name="Gateway enabled, not started (gateway_start: false)",
            service=LAYOUT.service,
            running=False,
            enabled=True,
            daemon_reload=unit.changed,
        )
        return
    systemd.service(
        name="Gateway running and enabled",
        service=LAYOUT.service,
        running=True,
        enabled=True,
        daemon_reload=unit.changed,
        restarted=bool(installed or changed or unit.changed),
    )


def _host_python() -> str:
    """The host's full Python version, which the wheelhouse is resolved for.

    pip downloads the binary wheels built for that exact interpreter (its
    dependencies may also differ between 3.11.2 and 3.11.7), so Debian 13's
    3.13 gets cp313 wheels from a control machine that runs 3.11.
    """
    found = str(host.get_fact(Command, command=PYTHON_VERSION)).strip()
    problem = host_python_problem(host.name, found)
    if problem is not None:
        raise SpecError(problem)
    return found


def build_wheelhouse(python_version: str) -> list[Path]:
    """The gateway and everything it needs for ``python_version``, built once."""
    sources = [
        *sorted((REPO / "gateway").rglob("*.py")),
        REPO / "gateway/pyproject.toml",
    ]
    key = " ".join([WHEELHOUSE_SPEC, *PATCH_LEVEL_EXTRAS, python_version])
    digest = hashlib.sha256(key.encode())
    for path in sources:
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    target = WHEELHOUSE_CACHE / digest.hexdigest()[:16]
    if not (target / "complete").exists():
        target.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "--quiet"]
        # Our own package (pure Python) first, then its dependencies resolved
        # for the host's interpreter, as binary wheels only.
        subprocess.run(
            [
                *pip,
                "wheel",
                "--no-deps",
                "--wheel-dir",
                str(target),
                str(REPO / "gateway"),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *pip,
                "download",
                "--only-binary=:all:",
                "--python-version",
                python_version,
                "--find-links",
                str(target),
                "--dest",
                str(target),
                WHEELHOUSE_SPEC,
                *PATCH_LEVEL_EXTRAS,
            ],
            check=True,
            capture_output=True,
        )
        (target / "complete").write_text("ok\n")
    return sorted(target.glob("*.whl"))


def _install(wheels: list[Path]) -> bool:
    if "python3-venv" not in host.get_fact(DebPackages):
        refresh_package_lists(name="Refresh package lists")
    apt.packages(name="Python venv support", packages=["python3-venv"])
    server.user(  # noqa: S604 - shell= is the user's login shell, not a subprocess
        name="Gateway system user",
        user=LAYOUT.user,
        system=True,
        shell="/usr/sbin/nologin",
        home=LAYOUT.root,
        create_home=False,
        ensure_home=False,
    )
    files.directory(name="Wheelhouse directory", path=LAYOUT.wheels, mode="755")
    # One fact for the whole wheelhouse (digest and mode of every wheel), then
    # an upload only for what differs: a file operation per wheel would read
    # three facts each, twice, on every run.
    listing = host.get_fact(
        Command, command=f"cd {LAYOUT.wheels} 2>/dev/null && {WHEEL_LISTING} || true"
    )
    local = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    stale = wheels_to_upload(local, listing or "")
    # The wheels that differ travel as one archive: one upload and one tar on
    # the host, where a file operation per wheel cost several round trips.
    by_name = {w.name: w for w in wheels}
    unpack_archive(
        name="Wheels of the gateway and its dependencies",
        directory=LAYOUT.wheels,
        archive=wheel_archive([by_name[n] for n in stale]) if stale else b"",
        members=stale,
        reason=f"all {len(wheels)} wheels are in place, root's, mode 644",
    )
    changed = bool(stale)
    probe = f"test -x {LAYOUT.venv}/bin/pgfortress-gateway && echo yes || echo no"
    venv_missing = host.get_fact(Command, command=probe) != "yes"
    if changed or venv_missing:
        server.shell(
            name="Install the gateway into its venv, without a package index",
            commands=[
                f"python3 -m venv {LAYOUT.venv}",
                f"{LAYOUT.venv}/bin/pip install --quiet --no-index --find-links "
                f"{LAYOUT.wheels} --force-reinstall '{WHEELHOUSE_SPEC}'",
            ],
        )
    return changed or venv_missing


def _configure(
    issued: tls.IssuedCertificate,
    ca_pem: bytes,
    config: Secret,
    password: Secret,
    jwt_secret: Secret | None,
    jwt_files: dict[str, bytes],
) -> bool:
    group = LAYOUT.user
    files.directory(
        name="Configuration directory",
        path=LAYOUT.etc,
        user="root",
        group=group,
        mode="750",
    )
    public = [
        files.put(
            name="TLS certificate chain",
            src=StringIO(issued.chain_pem.decode()),
            dest=LAYOUT.file("tls.crt"),
            user="root",
            group=group,
            mode="644",
        ),
        files.put(
            name="CA certificate for the database",
            src=StringIO(ca_pem.decode()),
            dest=LAYOUT.file("ca.crt"),
            user="root",
            group=group,
            mode="644",
        ),
        *(
            files.put(
                name=f"Token verification: {name}",
                src=StringIO(content.decode()),
                dest=LAYOUT.file(name),
                user="root",
                group=group,
                mode="644",
            )
            for name, content in jwt_files.items()
        ),
    ]
    secrets = [
        secret_file(
            name=f"Secret {name}",
            dest=LAYOUT.file(name),
            content=value,
            user="root",
            group=group,
            mode="640",
        )
        for name, value in (
            # The configuration may hold the Redis password: never diffed.
            ("gateway.toml", config),
            ("tls.key", issued.key_pem),
            ("db-password", password),
            *([("jwt-secret", jwt_secret)] if jwt_secret is not None else []),
        )
    ]
    in_use = {*jwt_files, *(["jwt-secret"] if jwt_secret is not None else [])}
    for name in sorted(JWT_KEY_FILES - in_use):
        # A key source given up: its file goes, so no stale key stays trusted
        # by a later configuration by mistake.
        files.file(
            name=f"Token verification: no {name}", path=LAYOUT.file(name), present=False
        )
    return any(op.changed for op in [*public, *secrets])


def _jwt_files(spec: GatewayHostSpec) -> dict[str, bytes]:
    """The public key or the JWKS host's CA to upload, read on this machine."""
    found: dict[str, bytes] = {}
    if spec.jwt.public_key_file is not None:
        found["jwt-public.pem"] = spec.jwt.public_key_file.read_bytes()
    if spec.jwt.jwks_ca_file is not None:
        found["jwks-ca.crt"] = spec.jwt.jwks_ca_file.read_bytes()
    return found
