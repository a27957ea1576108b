"""Run the gateway: ``pgfortress-gateway --config FILE.toml``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .app import create_app
from .config import ConfigError, load_config

__all__ = ["main"]


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
    server = config.server
    uvicorn.run(
        create_app(config),
        host=server.listen_host,
        port=server.listen_port,
        ssl_certfile=str(server.tls_cert_file) if server.tls_cert_file else None,
        ssl_keyfile=str(server.tls_key_file) if server.tls_key_file else None,
        # The audit logger writes one line per request; uvicorn's own access
        # log would print query strings, which carry filter values.
        access_log=False,
        log_config=None,
        server_header=False,
        # The gateway terminates TLS itself; an X-Forwarded-For from any peer,
        # loopback included, would let a client choose its address for the
        # per-address limit and the audit log.
        proxy_headers=False,
        forwarded_allow_ips="",
        lifespan="on",
        timeout_keep_alive=5,
        limit_concurrency=1000,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
