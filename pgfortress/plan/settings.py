"""Render the postgresql.conf drop-in that carries every hardened setting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..spec.postgres import PostgresHostSpec
from ._templates import render
from .layout import PostgresLayout

__all__ = ["TLS_CIPHERS", "conf_value", "render_settings"]

# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are not
# affected by ssl_ciphers and are all strong.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1:!RC4:!3DES"


def conf_value(value: str | int | float | bool) -> str:
    """A value written the way postgresql.conf parses it back."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def managed_settings(
    spec: PostgresHostSpec, layout: PostgresLayout, listen: Sequence[str]
) -> dict[str, str | int | float | bool]:
    """The settings pgfortress owns, in the order they are written."""
    log = spec.logging
    return {
        "listen_addresses": ",".join(listen),
        "port": spec.port,
        "unix_socket_directories": spec.socket.directory,
        "unix_socket_group": spec.socket.group,
        # An octal literal: PostgreSQL reads the leading 0 as base 8.
        "unix_socket_permissions": _Octal(spec.socket.mode),
        "password_encryption": "scram-sha-256",
        "ssl": True,
        "ssl_cert_file": layout.server_cert,
        "ssl_key_file": layout.server_key,
        "ssl_ca_file": layout.ca_cert,
        "ssl_min_protocol_version": spec.tls.min_protocol,
        "ssl_ciphers": TLS_CIPHERS,
        "ssl_prefer_server_ciphers": True,
        "log_connections": log.connections,
        "log_disconnections": log.disconnections,
        "log_line_prefix": log.line_prefix,
        "log_statement": log.statement,
    }


class _Octal(str):
    """A string that postgresql.conf must see unquoted."""


def _render_value(value: str | int | float | bool) -> str:
    return str(value) if isinstance(value, _Octal) else conf_value(value)


def render_settings(
    spec: PostgresHostSpec, layout: PostgresLayout, listen: Sequence[str]
) -> str:
    """The text of the conf.d drop-in for one host."""
    managed = managed_settings(spec, layout, listen)
    return render(
        "postgresql/pgfortress.conf.j2",
        managed=_rendered(managed),
        extra=_rendered(dict(sorted(spec.settings.items()))),
    )


def _rendered(values: Mapping[str, str | int | float | bool]) -> list[tuple[str, str]]:
    return [(name, _render_value(value)) for name, value in values.items()]
