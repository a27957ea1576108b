"""Run the gateway: ``pgfortress-gateway --config FILE.toml``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from .app import create_apps
from .config import ConfigError, GatewayConfig, load_config

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
            timeout_keep_alive=5,
            limit_concurrency=1000,
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
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"pgfortress-gateway: {error}", file=sys.stderr)
        return 2
    started = asyncio.run(_serve(config))
    # 3 is uvicorn's own "could not start" code: the unit's logs say why.
    return 0 if started else 3


if __name__ == "__main__":
    sys.exit(main())
