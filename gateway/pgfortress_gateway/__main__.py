"""Run the gateway: ``pgfortress-gateway --config FILE.toml``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
import uvloop

from .app import create_apps
from .config import ConfigError, GatewayConfig, load_config
from .logsink import configure
from .slowclients import guarded_protocol

__all__ = ["main"]


class _PrivateServer(uvicorn.Server):
    """The metrics listener leaves signals to the public server, which owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(config: GatewayConfig) -> bool:
    """The public API and the private metrics listener, in one event loop."""
    api, private = create_apps(config)
    server = config.server
    public = uvicorn.Server(
        uvicorn.Config(
            api,
            host=server.listen_host,
            port=server.listen_port,
            ssl_certfile=str(server.tls_cert_file) if server.tls_cert_file else None,
            ssl_keyfile=str(server.tls_key_file) if server.tls_key_file else None,
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
    metrics = _PrivateServer(
        uvicorn.Config(
            private,
            host=server.metrics_host,
            port=server.metrics_port,
            access_log=False,
            log_config=None,
            server_header=False,
            lifespan="off",
        )
    )

    async def serve_public() -> None:
        try:
            await public.serve()
        finally:
            # Whatever ends the API (a signal, a refused start) ends metrics too.
            metrics.should_exit = True

    await asyncio.gather(serve_public(), metrics.serve())
    return bool(public.started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgfortress-gateway", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="TOML file")
    args = parser.parse_args(argv)
    configure(sys.stderr)
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"pgfortress-gateway: {error}", file=sys.stderr)
        return 2
    # uvloop's event loop and TLS run in C: a third of the gateway's CPU went
    # to asyncio's pure-Python selector and SSL protocol (docs/benchmarks.md).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            started = runner.run(_serve(config))
        except ConfigError as error:
            # Found only at start-up: a key file or JWKS URL that cannot be used.
            print(f"pgfortress-gateway: {error}", file=sys.stderr)
            return 2
    # 3 is uvicorn's own "could not start" code: the unit's logs say why.
    return 0 if started else 3


if __name__ == "__main__":
    sys.exit(main())
