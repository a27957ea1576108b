"""Render the gateway's configuration file and systemd unit for one host."""

from __future__ import annotations

from dataclasses import dataclass

from ..spec.gateway import GatewayHostSpec
from ._templates import render

__all__ = ["GatewayLayout", "render_gateway_config", "render_gateway_unit"]


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


def render_gateway_config(spec: GatewayHostSpec, layout: GatewayLayout) -> str:
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
        limits=spec.limits,
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
