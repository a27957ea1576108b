"""Run the gateway: ``pgfortress-gateway --config FILE.toml``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop

from .app import create_apps
from .config import ConfigError, GatewayConfig, load_config
from .logsink import configure
from .servers import private_server, public_server
from .workers import run_workers

__all__ = ["main"]


async def _serve(config: GatewayConfig) -> bool:
    """The public API and the private metrics listener, in one event loop."""
    api, private = create_apps(config)
    public = public_server(config.server, api)
    metrics = private_server(config.server, private)

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
    if config.server.workers > 1:
        return run_workers(config)
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
