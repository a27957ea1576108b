"""Render the gateway's configuration file and systemd unit for one host."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ..secrets import Secret
from ..spec.gateway import GatewayHostSpec
from ._templates import render

__all__ = [
    "GatewayLayout",
    "render_gateway_config",
    "render_gateway_unit",
    "storage_uri",
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
        jwt={"role_claim": spec.role_claim},
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
