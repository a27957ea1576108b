"""CPU per request of the gateway's database path, and of the whole gateway,
against a real PostgreSQL on a lab host, from this machine.

Run as root from the repository, in steps, so that the middle ones can also
run under callgrind::

    sudo .venv/bin/python -m bench.gateway_db_cpu up        # lab pcpu, db1
    sudo .venv/bin/python -m bench.gateway_db_cpu database  # run_as alone
    sudo .venv/bin/python -m bench.gateway_db_cpu gateway   # the whole process
    sudo .venv/bin/python -m bench.gateway_db_cpu down

``up`` boots lab ``pcpu`` with db1, hardens it with deploys/site.py, creates
the API application and writes a gateway configuration (TLS both ways,
verify-full to db1, rate limits raised so that they never refuse) under the
lab's directory. ``database`` calls ``Database.run_as`` for
``GET /customers?id=eq.1`` from 32 tasks over a pool of 10 connections, as
the gateway does, and prints CPU microseconds per request; with
``--requests N`` it runs exactly N requests instead, for instruction counts::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.gateway_db_cpu database --requests 320
    # the same with --requests 1600; then (Ir of 1600 - Ir of 320) / 1280

``gateway`` starts the gateway here (``python -m pgfortress_gateway``, or the
command given with ``--command``), loads it with wrk (2 threads, 32 connections,
``web_user`` tokens of 512 subjects, as bench/gateway_vs_pgbench.py) and
prints requests/s and the CPU of its processes per request, per round. It
asks for ``/customers?id=eq.1``, or the path given with ``--path``: ``up``
also gives customer 1 the 300 orders of bench/gateway_vs_postgraphile.py, so
``--path '/orders?customer_id=eq.1&order=id&limit=100'`` answers 100 rows.
Everything shares this machine's cores: compare runs made one after the
other, and prefer the instruction counts. Nothing is written to the docs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import jwt
import uvloop
from pgfortress_gateway.app import connection_string
from pgfortress_gateway.config import GatewayConfig, load_config
from pgfortress_gateway.database import Database, Query
from pgfortress_gateway.grammar import parse_read
from pgfortress_gateway.schema import Column, Relation, SchemaCache
from pgfortress_gateway.statements import StatementCache

from pgfortress import lab as labs
from pgfortress import tls
from tests.lab._api import migrate
from tests.lab.conftest import run_deploy

from ._lab import BenchError
from .gateway_vs_pgbench import wrk_script
from .gateway_vs_postgraphile import SEED

LAB = "pcpu"
PORT = 18443
CLAIMS = '{"role":"web_user","sub":"bench"}'
SECRET = "bench-only-hs256-secret-of-at-least-32-bytes"  # noqa: S105
TOML = """
[database]
host = "{db}"
dbname = "app"
user = "authenticator"
password_file = "{dir}/authenticator"
sslrootcert = "{ca}"

[api]
schema = "api"
allowed_roles = ["web_user"]

[jwt]
secret_file = "{dir}/jwt.secret"

[limits]
per_subject = "10000000/minute"
per_address = "10000000/minute"

[server]
listen_host = "127.0.0.1"
listen_port = {port}
tls_cert_file = "{dir}/server.crt"
tls_key_file = "{dir}/server.key"
metrics_port = {metrics}
"""


def workdir() -> Path:
    return labs.lab_dir(LAB) / "bench-gateway"


def _secret(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def up() -> None:
    state = labs.up(LAB, ["db1"])
    tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB} CA")
    run = run_deploy(state, "deploys/site.py")
    if run.returncode != 0:
        raise BenchError(f"deploys/site.py failed:\n{run.output[-3000:]}")
    migrate(state)
    migrate(state, SEED)
    work = workdir()
    work.mkdir(mode=0o700, exist_ok=True)
    ca = tls.load_ca(state.dir / "ca")
    issued = tls.issue_server_certificate(
        ca, common_name="localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"]
    )
    (work / "server.crt").write_bytes(issued.chain_pem)
    _secret(work / "server.key", issued.key_pem.reveal())
    _secret(work / "jwt.secret", SECRET)
    password = (state.dir / "secrets" / "db1" / "authenticator").read_text()
    _secret(work / "authenticator", password.strip())
    text = TOML.format(
        db=state.hosts["db1"].address,
        dir=work,
        ca=state.dir / "ca" / "ca.crt",
        port=PORT,
        metrics=PORT + 1,
    )
    (work / "gateway.toml").write_text(text)
    print(work / "gateway.toml")


def _read_query() -> Query:
    columns = {
        "id": Column("id", "integer", nullable=False),
        "name": Column("name", "text", nullable=False),
    }
    cache = SchemaCache("api", {"customers": Relation("customers", "table", columns)})
    read = parse_read("customers", [("id", "eq.1")], {}, cache)
    query = StatementCache(cache, 1000).read(read)
    return Query(query.sql, query.params)


async def _database(config: GatewayConfig, requests: int, seconds: float) -> str:
    db = Database(connection_string(config), min_size=10, max_size=10, timeout=10)
    await db.open()
    query = _read_query()
    count, stop = 0, False

    async def one() -> None:
        nonlocal count
        await db.run_as("web_user", CLAIMS, query, 10000, read_only=True)
        count += 1

    async def caller(limit: int) -> None:
        while not stop and limit:
            await one()
            limit -= 1

    try:
        await one()
        if requests:
            await asyncio.gather(*(caller(requests // 32) for _ in range(32)))
            return f"{count - 1} requests"
        callers = [asyncio.create_task(caller(-1)) for _ in range(32)]
        await asyncio.sleep(1)
        count, cpu, wall = 0, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        done, cpu, wall = count, time.process_time() - cpu, time.monotonic() - wall
        stop = True
        await asyncio.gather(*callers)
        return (
            f"{done / wall:.0f} requests/s, {cpu / wall:.2f} cores, "
            f"{1e6 * cpu / done:.0f} µs of CPU per request"
        )
    finally:
        await db.close()


def _cpu_seconds(pid: int) -> float:
    """CPU of a process and its children still running, from /proc."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    ticks = 0
    for one in [pid, *map(int, children)]:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wrk(seconds: int, script: Path, path: str) -> tuple[int, str]:
    url = f"https://127.0.0.1:{PORT}{path}"
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"(\d+) requests in", out)
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found is None or refused is not None:
        raise BenchError(f"wrk: not every request answered 200:\n{out}")
    return int(found.group(1)), out


def gateway(command: list[str], seconds: int, rounds: int, path: str) -> None:
    expires = int(time.time()) + 3600
    bearers = [
        jwt.encode(
            {"role": "web_user", "sub": f"bench-{n}", "exp": expires},
            SECRET,
            algorithm="HS256",
        )
        for n in range(512)
    ]
    script = workdir() / "tokens.lua"
    _secret(script, wrk_script(bearers))
    config = workdir() / "gateway.toml"
    command = command or [sys.executable, "-m", "pgfortress_gateway", "--config"]
    with (workdir() / "gateway.log").open("w") as log:
        process = subprocess.Popen([*command, str(config)], stdout=log, stderr=log)
        try:
            time.sleep(3)
            _wrk(3, script, path)  # warm-up: pool, statement and token caches
            for number in range(rounds):
                cpu, wall = _cpu_seconds(process.pid), time.monotonic()
                done, _ = _wrk(seconds, script, path)
                cpu = _cpu_seconds(process.pid) - cpu
                wall = time.monotonic() - wall
                print(
                    f"round {number + 1}: {done / wall:.0f} requests/s, "
                    f"{cpu / wall:.2f} cores, {1e6 * cpu / done:.0f} µs of CPU "
                    "per request",
                    flush=True,
                )
        finally:
            process.terminate()
            process.wait(timeout=15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("step", choices=["up", "database", "gateway", "down"])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument(
        "--path",
        default="/customers?id=eq.1",
        help="gateway only: the path and query wrk asks for",
    )
    parser.add_argument(
        "--command",
        default="",
        help="gateway only: the command serving it, to which the path of its "
        "configuration is appended (default: python -m pgfortress_gateway --config)",
    )
    args = parser.parse_args(argv)
    try:
        if args.step == "up":
            up()
        elif args.step == "down":
            labs.down(LAB)
        elif args.step == "database":
            config = load_config(workdir() / "gateway.toml")
            run = _database(config, args.requests, args.seconds)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                print(runner.run(run))
        else:
            gateway(shlex.split(args.command), args.seconds, args.rounds, args.path)
    except BenchError as error:
        print(f"gateway_db_cpu: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
