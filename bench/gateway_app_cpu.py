"""CPU per request of the gateway's application layer, with no network.

Run from the repository (no lab, no root)::

    .venv/bin/python -m bench.gateway_app_cpu

CPU time on a shared machine is noisy; instructions are not. Instructions per
request are the difference of two runs under callgrind, divided by the
difference in requests::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python -m bench.gateway_app_cpu --no-profile --requests 200
    # the same with --requests 1200; then (Ir of 1200 - Ir of 200) / 1000

The public ASGI application answers ``GET /customers?id=eq.1`` with tokens of
512 subjects, as in bench/gateway_vs_pgbench.py, but called in this process
with a stand-in database that answers at once. What it measures is what the
gateway does per request above uvicorn and psycopg: the ASGI entry with
Starlette's request and response objects, the rate limits (in memory), the
cached token check, the URL grammar, the SQL (composed once per shape, then
rendered to bytes as psycopg would), the response, the audit line (through
the gateway's own batched log handler, as deployed, writing to /dev/null) and
the metrics. It prints microseconds of CPU per request, then where they go
(cProfile's own time, grouped by module). Nothing is written; the figures go
into the hand-written part of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from pgfortress_gateway.app import create_apps
from pgfortress_gateway.config import config_from_mapping
from pgfortress_gateway.database import Query
from pgfortress_gateway.logsink import configure
from pgfortress_gateway.schema import Column, Relation, SchemaCache

if TYPE_CHECKING:  # a type only: the script also measures older trees
    from pgfortress_gateway.asgi import ApiApplication

SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - a throwaway key
SUBJECTS = 512
ROW = ('[{"id":1,"name":"Ada"}]', None, 1)


class StandInDatabase:
    """Answers every statement with one customer, after composing its text."""

    async def run_as(
        self, role: str, claims: str, query: Query, *args: Any, **kwargs: Any
    ) -> tuple[Any, ...]:
        query.sql.as_bytes(None)
        return ROW

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True


def application(workdir: Path) -> ApiApplication:
    files = {"password": "pw", "secret": SECRET, "ca.crt": "-----BEGIN"}
    for name, text in files.items():
        (workdir / name).write_text(text + "\n")
        (workdir / name).chmod(0o600)
    config = config_from_mapping(
        {
            "database": {
                "host": "127.0.0.1",
                "dbname": "app",
                "user": "authenticator",
                "password_file": str(workdir / "password"),
                "sslrootcert": str(workdir / "ca.crt"),
            },
            "api": {"schema": "api", "allowed_roles": ["web_user"]},
            "jwt": {"secret_file": str(workdir / "secret")},
            "limits": {
                "per_subject": "10000000/minute",
                "per_address": "10000000/minute",
            },
        }
    )
    api, _ = create_apps(config, StandInDatabase())  # type: ignore[arg-type]
    columns = {
        "id": Column("id", "integer", nullable=False),
        "name": Column("name", "text", nullable=False),
    }
    relations = {"customers": Relation("customers", "table", columns)}
    api.state.gateway.cache = SchemaCache("api", relations)
    return api


async def call(api: ApiApplication, bearer: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/customers",
        "raw_path": b"/customers",
        "query_string": b"id=eq.1",
        "root_path": "",
        "headers": [
            (b"host", b"gw1"),
            (b"authorization", b"Bearer " + bearer.encode()),
        ],
        "client": ("10.0.0.5", 50000),
        "server": ("10.0.0.1", 8443),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await api(scope, receive, send)
    return status


async def run(api: ApiApplication, bearers: list[str], requests: int) -> float:
    """CPU microseconds per request, after a warm-up that fills the caches."""
    for bearer in bearers:
        if await call(api, bearer) != 200:
            raise SystemExit("the application did not answer 200")
    started = time.process_time()
    for number in range(requests):
        await call(api, bearers[number % len(bearers)])
    return 1e6 * (time.process_time() - started) / requests


def _module(path: str) -> str:
    """``package/module.py`` for code, ``builtins`` for C functions."""
    if path == "~":
        return "builtins (isinstance, str and dict methods, …)"
    parts = Path(path).parts
    return "/".join(parts[-2:])


def by_module(profile: cProfile.Profile, top: int) -> list[tuple[float, str]]:
    stats = pstats.Stats(profile)
    own: collections.Counter[str] = collections.Counter()
    for (path, _, _), row in stats.stats.items():  # type: ignore[attr-defined]
        own[_module(path)] += row[2]
    total = sum(own.values())
    return [(100 * spent / total, key) for key, spent in own.most_common(top)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the profile: for instruction counts, e.g. two runs under "
        "valgrind --tool=callgrind with different --requests, subtracted",
    )
    args = parser.parse_args(argv)
    # Open for the whole run: the handler writes its last batch at exit.
    configure(Path(os.devnull).open("w"))  # noqa: SIM115
    expires = int(time.time()) + 3600
    bearers = [
        jwt.encode(
            {"role": "web_user", "sub": f"bench-{n}", "exp": expires},
            SECRET,
            algorithm="HS256",
        )
        for n in range(SUBJECTS)
    ]
    with tempfile.TemporaryDirectory() as workdir:
        api = application(Path(workdir))
        cost = asyncio.run(run(api, bearers, args.requests))
        print(f"{cost:.0f} µs of CPU per request ({args.requests} requests)")
        if args.no_profile:
            return 0
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(run(api, bearers, args.requests // 4))
        profile.disable()
    print("own time by module (cProfile, which slows everything down evenly):")
    for share, module in by_module(profile, 15):
        print(f"  {share:5.1f} %  {module}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
