"""The two uvicorn servers of a gateway process: the public API and the
private metrics listener, configured the same way whether one process serves
both or several workers share the API (see :mod:`.workers`)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from .asgi import ApiApplication
from .config import ServerConfig
from .slowclients import guarded_protocol

__all__ = ["PrivateServer", "private_server", "public_listener", "public_server"]

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


class PrivateServer(uvicorn.Server):
    """A server that leaves signals to another, which owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def public_server(server: ServerConfig, app: ApiApplication) -> uvicorn.Server:
    """The HTTPS API, with the slow-client deadlines of :mod:`.slowclients`."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=server.listen_host,
            port=server.listen_port,
            ssl_certfile=str(server.tls_cert_file) if server.tls_cert_file else None,
            ssl_keyfile=str(server.tls_key_file) if server.tls_key_file else None,
            # Forward-secret AEAD suites only for TLS 1.2 (TLS 1.3 has nothing
            # else); Python's default minimum is already TLS 1.2.
            ssl_ciphers=TLS12_CIPHERS,
            # The audit logger writes one line per request; uvicorn's access
            # log would print query strings, which carry filter values.
            access_log=False,
            log_config=None,
            server_header=False,
            # The gateway terminates TLS itself; an X-Forwarded-For from any
            # peer, loopback included, would let a client choose its address
            # for the per-address limit and the audit log.
            proxy_headers=False,
            forwarded_allow_ips="",
            lifespan="on",
            http=guarded_protocol(server.request_timeout_seconds),
            timeout_keep_alive=server.idle_timeout_seconds,
            limit_concurrency=server.max_connections,
        )
    )


def public_listener(server: ServerConfig) -> socket.socket:
    """A listening socket of the API that other workers may bind as well.

    Each worker binds its own (SO_REUSEPORT), so the kernel spreads new
    connections evenly over them instead of waking every worker for each.
    """
    family = socket.AF_INET6 if ":" in server.listen_host else socket.AF_INET
    return socket.create_server(
        (server.listen_host, server.listen_port),
        family=family,
        backlog=2048,
        reuse_port=True,
    )


def private_server(server: ServerConfig, app: Starlette) -> PrivateServer:
    """The plain-HTTP metrics and health listener, loopback by default."""
    return PrivateServer(
        uvicorn.Config(
            app,
            host=server.metrics_host,
            port=server.metrics_port,
            access_log=False,
            log_config=None,
            server_header=False,
            lifespan="off",
        )
    )
