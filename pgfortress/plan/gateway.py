"""Render the gateway's configuration file and systemd unit for one host."""

from __future__ import annotations

import io
import ipaddress
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..secrets import Secret
from ..spec.gateway import GatewayHostSpec
from ._templates import render

__all__ = [
    "WHEEL_LISTING",
    "GatewayLayout",
    "address_filter",
    "host_python_problem",
    "render_gateway_config",
    "render_gateway_unit",
    "storage_uri",
    "wheel_archive",
    "wheels_to_upload",
]


@dataclass(frozen=True)
class GatewayLayout:
    """Where the gateway lives on its host."""

    root: str = "/opt/pgfortress-gateway"
    etc: str = "/etc/pgfortress-gateway"
    user: str = "pgfortress-gw"
    service: str = "pgfortress-gateway"

    @property
    def venv(self) -> str:
        return f"{self.root}/venv"

    @property
    def wheels(self) -> str:
        return f"{self.root}/wheels"

    @property
    def config(self) -> str:
        return f"{self.etc}/gateway.toml"

    @property
    def unit(self) -> str:
        return f"/etc/systemd/system/{self.service}.service"

    def file(self, name: str) -> str:
        return f"{self.etc}/{name}"


def storage_uri(spec: GatewayHostSpec, redis_password: Secret | None) -> str:
    """Where the gateway keeps its rate-limit counters."""
    limits = spec.limits
    if limits.redis_host is None or redis_password is None:
        return "memory://"
    password = quote(redis_password.reveal(), safe="")
    host = limits.redis_host
    if ":" in host:  # an IPv6 address needs brackets in a URI
        host = f"[{host}]"
    return f"redis://:{password}@{host}:{limits.redis_port}"


def address_filter(spec: GatewayHostSpec) -> list[str]:
    """The networks of the unit's ``IPAddressAllow=``, besides loopback.

    systemd checks one list in both directions: the source address of every
    packet that arrives and the destination of every packet that leaves. The
    clients' networks (``gateway_allowed_networks``) must be on it or no
    request gets in, and the service can then also open connections to them;
    what the list can keep out is every other address. The database and then
    the Redis host are added, as /32 or /128, when they are addresses outside
    those networks and not loopback (always allowed). A host name cannot be
    filtered by address and adds nothing: its network has to be among
    ``gateway_allowed_networks``. No networks at all means no filter.

    The order is the inventory's, then the database, then Redis, so a second
    deploy renders the same unit; a network named twice is listed once.
    """
    # Each network once, as the inventory spells it, keyed by its value.
    allowed: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, str] = {}
    for text in spec.allowed_networks:
        allowed.setdefault(ipaddress.ip_network(text), text)
    if not allowed:
        return []
    for peer in (spec.database.host, spec.limits.redis_host):
        if peer is None:
            continue
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # a host name
            continue
        if address.is_loopback or any(address in net for net in allowed):
            continue
        network = ipaddress.ip_network(address)
        allowed[network] = str(network)
    return list(allowed.values())


def render_gateway_config(
    spec: GatewayHostSpec, layout: GatewayLayout, redis_password: Secret | None = None
) -> str:
    """The gateway's TOML; it holds the Redis password when one is used."""
    api = spec.api
    return render(
        "gateway/gateway.toml.j2",
        database=spec.database,
        api={
            "schema": api.schema_name,
            "anonymous_role": api.anonymous_role,
            "allowed_roles": api.allowed_roles,
            "max_rows": api.max_rows,
            "max_body_bytes": api.max_body_bytes,
            "statement_timeout_ms": api.statement_timeout_ms,
        },
        jwt={
            "role_claim": spec.role_claim,
            "jwks_url": spec.jwt.jwks_url,
            "jwks_ca_file": layout.file("jwks-ca.crt")
            if spec.jwt.jwks_ca_file
            else None,
            "public_key_file": (
                layout.file("jwt-public.pem") if spec.jwt.public_key_file else None
            ),
            "audience": spec.jwt.audience,
            "issuer": spec.jwt.issuer,
        },
        cors={"allowed_origins": spec.cors_origins},
        limits={
            "per_subject": spec.limits.per_subject,
            "per_address": spec.limits.per_address,
            "storage_uri": storage_uri(spec, redis_password),
        },
        server={
            "listen_host": spec.listen,
            "listen_port": spec.port,
            "metrics_port": spec.metrics_port,
            "workers": spec.workers,
        },
        paths={
            "password": layout.file("db-password"),
            "ca": layout.file("ca.crt"),
            "jwt_secret": layout.file("jwt-secret"),
            "tls_cert": layout.file("tls.crt"),
            "tls_key": layout.file("tls.key"),
        },
    )


def render_gateway_unit(spec: GatewayHostSpec, layout: GatewayLayout) -> str:
    return render(
        "gateway/pgfortress-gateway.service.j2",
        user=layout.user,
        group=layout.user,
        venv=layout.venv,
        config=layout.config,
        allowed_networks=spec.allowed_networks,
    )


# The oldest Python the gateway runs on (gateway/pyproject.toml's requires-python).
GATEWAY_PYTHON = (3, 11)


def host_python_problem(host: str, version: str) -> str | None:
    """Why the gateway cannot run on the host's ``python3 --version``, or None.

    The wheelhouse is resolved for the host's own interpreter (cp313 wheels
    for Debian 13's 3.13, cp311 for Debian 12's 3.11), so the control
    machine's Python does not have to match it.
    """
    parts = version.strip().split(".")
    if len(parts) < 2 or not all(part.isdigit() for part in parts[:2]):
        return f"host {host}: python3 printed {version.strip()!r}, not a version"
    if (int(parts[0]), int(parts[1])) < GATEWAY_PYTHON:
        wanted = ".".join(str(n) for n in GATEWAY_PYTHON)
        return (
            f"host {host}: python3 is {version.strip()}; the gateway needs {wanted} "
            "or later (Debian 12 and 13 ship it)"
        )
    return None


# Run in the wheelhouse on the host: one line per wheel, "<sha256> <mode> <name>".
WHEEL_LISTING = (
    'for wheel in *.whl; do [ -f "$wheel" ] || continue; '
    'printf \'%s %s %s\\n\' "$(sha256sum < "$wheel" | cut -d " " -f 1)" '
    '"$(stat -c %a "$wheel")" "$wheel"; done'
)


def wheel_archive(wheels: Sequence[Path]) -> bytes:
    """The wheels as one uncompressed tar (wheels are zip files already), each
    member named by the wheel's file name, root's and mode 644: what
    :data:`WHEEL_LISTING` must then read on the host. One upload and one
    ``tar`` on the host instead of a file operation per wheel."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for wheel in wheels:
            data = wheel.read_bytes()
            member = tarfile.TarInfo(wheel.name)
            member.size, member.mode = len(data), 0o644
            member.uname = member.gname = "root"
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def wheels_to_upload(local: Mapping[str, str], listing: str) -> list[str]:
    """The wheels (name → sha256 here) the host lacks or holds with other
    content or a mode other than 644, from :data:`WHEEL_LISTING`'s output."""
    present = {}
    for line in listing.splitlines():
        digest, mode, name = [*line.split(" ", 2), "", ""][:3]
        present[name] = (digest, mode)
    return sorted(
        name for name, digest in local.items() if present.get(name) != (digest, "644")
    )
