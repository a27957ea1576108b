"""Gateway against pgbench and PostGraphile 4, at concurrency 1, 8, 32 and 128.

Run as root from the repository (it boots lab hosts)::

    sudo .venv/bin/python -m bench.gateway_vs_postgraphile

One run brings up lab ``bpgl`` (db1, gw1, gw2, client1), deploys the database
and the gateway as ``deploys/site.py`` does, installs PostGraphile 4 (npm
``postgraphile@4``, fetched on this machine and uploaded: lab hosts have no
route to npm) on gw2, measures, writes bench/results/gateway_vs_postgraphile.json
and its section of docs/benchmarks.md, and takes the lab down again.

Two requests, each as every side asks it:

- single row: the gateway's ``GET /customers?id=eq.1``; PostGraphile's
  ``{customerById(id: 1) {id name}}``;
- 100 rows: ``GET /orders?customer_id=eq.1&order=id&limit=100``;
  ``{allOrders(condition: {customerId: 1}, orderBy: ID_ASC, first: 100)
  {nodes {id customerId total}}}``.

Three sides, each with the same authorisation work per request:

- pgbench on gw1 runs the transaction the gateway sends (BEGIN; SET LOCAL
  ROLE; the claims; the SELECT the gateway renders; COMMIT): the ceiling;
- the gateway on gw1, as deployed (one process) with its rate limits raised
  so they are checked but never refuse;
- PostGraphile 4 on gw2, in library mode under Node's HTTPS server with the
  gateway's certificate, a pool of 10 connections as the authenticator over
  TLS (verify-full), HS256 JWTs with the gateway's secret, ``role`` claim to
  ``SET LOCAL ROLE``, claims as ``jwt.claims.*`` settings: the same switching.

wrk on client1 sends every request over HTTPS with tokens of 512 subjects.
Every lab host shares this machine's cores, so the figures are relative.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from pgfortress_gateway.schema import Column, Relation, SchemaCache

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from tests.lab._api import migrate

from ._figures import Figures, median_of, parse_pgbench, parse_wrk, replace_section
from ._lab import BenchError, apt_install, deploy, run_context, say, ssh
from .gateway_vs_pgbench import inline_read, sample_gateway, transaction_around

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "gateway_vs_postgraphile.json"
DOC = REPO / "docs" / "benchmarks.md"
COMMAND = "sudo .venv/bin/python -m bench.gateway_vs_postgraphile"
NPM_PREFIX = Path(
    os.environ.get("PGFORTRESS_NPM_CACHE", "/var/cache/pgfortress/npm")
).with_name("npm-postgraphile")
POSTGRAPHILE = "postgraphile@4"

LAB = "bpgl"
HOSTS = ["db1", "gw1", "gw2", "client1"]
GATEWAY_HOST, POSTGRAPHILE_HOST, LOADGEN = "gw1", "gw2", "client1"
PGBENCH_HOST = "gw1"  # the authenticator may log in from gateway hosts only
GATEWAY_UNIT, POSTGRAPHILE_UNIT = "pgfortress-gateway", "pgl-bench"
POSTGRAPHILE_PORT = 5443
WORK = "/root/bench"
PGBENCH = "/usr/lib/postgresql/15/bin/pgbench"
LIMITS = {"per_subject": "10000000/minute", "per_address": "10000000/minute"}
CONCURRENCIES = (1, 8, 32, 128)
# db1 allows 100 connections; pgbench opens one per client.
PGBENCH_MAX_CLIENTS = 64
SUBJECTS = 512
ORDERS = 300  # rows of customer 1 in api.orders; the page takes 100


@dataclass(frozen=True)
class Query:
    """One request, as the gateway, PostGraphile and pgbench each ask it."""

    key: str
    label: str
    relation: str
    params: tuple[tuple[str, str], ...]
    graphql: str
    rows: int

    @property
    def path(self) -> str:
        return f"/{self.relation}?" + "&".join(f"{k}={v}" for k, v in self.params)


QUERIES = (
    Query(
        "one",
        "single row",
        "customers",
        (("id", "eq.1"),),
        "{customerById(id: 1) {id name}}",
        1,
    ),
    Query(
        "hundred",
        "100 rows, filtered",
        "orders",
        (("customer_id", "eq.1"), ("order", "id"), ("limit", "100")),
        "{allOrders(condition: {customerId: 1}, orderBy: ID_ASC, first: 100) "
        "{nodes {id customerId total}}}",
        100,
    ),
)
SIDES = ("pgbench", "gateway", "postgraphile")

# ORDERS rows for customer 1, run by app_migrator as app_owner.
SEED = """
SET ROLE app_owner;
INSERT INTO api.orders (id, customer_id, total)
  SELECT 1000 + n, 1, n * 1.5 FROM generate_series(1, 300) AS n;
ANALYZE api.orders;
"""

SCHEMA = SchemaCache(
    "api",
    {
        "customers": Relation(
            "customers",
            "table",
            {
                "id": Column("id", "integer", nullable=False),
                "name": Column("name", "text", nullable=False),
            },
        ),
        "orders": Relation(
            "orders",
            "table",
            {
                "id": Column("id", "integer", nullable=False),
                "customer_id": Column("customer_id", "integer", nullable=False),
                "total": Column("total", "numeric", nullable=False),
            },
        ),
    },
)

SERVER_JS = """
const fs = require("fs");
const https = require("https");
const { Pool } = require("pg");
const { postgraphile } = require("postgraphile");
const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const pool = new Pool({
  host: cfg.db, database: "app", user: "authenticator",
  password: fs.readFileSync(cfg.passwordFile, "utf8").trim(),
  ssl: { ca: fs.readFileSync(cfg.ca), rejectUnauthorized: true },
  max: 10,
});
const handler = postgraphile(pool, "api", {
  jwtSecret: fs.readFileSync(cfg.jwtSecretFile, "utf8").trim(),
  jwtVerifyOptions: { algorithms: ["HS256"], audience: "postgraphile" },
  pgDefaultRole: "web_anon",
  graphiql: false, enableCors: false, disableQueryLog: true,
  showErrorStack: false, extendedErrors: [], bodySizeLimit: "100kB",
  retryOnInitFail: false, watchPg: false,
});
https.createServer(
  { key: fs.readFileSync(cfg.key), cert: fs.readFileSync(cfg.cert) }, handler
).listen(cfg.port, cfg.listen);
"""

WRK_SCRIPT = """
local tokens = {%(tokens)s}
local per_thread = %(per_thread)d
local method, body = "%(method)s", %(body)s
local threads = 0
local prepared = {}
local next_one = 0

function setup(thread)
  thread:set("first", (threads * per_thread) %% #tokens)
  threads = threads + 1
end

function init(args)
  for i = 1, per_thread do
    local headers = {Authorization = "Bearer " .. tokens[first + i]}
    if body then headers["Content-Type"] = "application/json" end
    prepared[i] = wrk.format(method, nil, headers, body)
  end
end

function request()
  next_one = next_one %% per_thread + 1
  return prepared[next_one]
end
"""


def read_sql(query: Query) -> str:
    """The gateway's SELECT for ``query``, with its bound values inlined."""
    return inline_read(query.relation, list(query.params), SCHEMA)


def transaction_script(query: Query) -> str:
    """The gateway's transaction for ``query``, for pgbench."""
    return transaction_around(read_sql(query))


def postgraphile_bundle() -> bytes:
    """``postgraphile@4`` and its dependencies as a gzip tarball of node_modules."""
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("installing PostGraphile needs npm on this machine's PATH")
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    if not (NPM_PREFIX / "node_modules" / "postgraphile").is_dir():
        say(f"npm install {POSTGRAPHILE} into {NPM_PREFIX}")
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", POSTGRAPHILE],
            check=True,
            capture_output=True,
            timeout=600,
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        bundle.add(NPM_PREFIX / "node_modules", arcname="node_modules")
    return buffer.getvalue()


def postgraphile_version() -> str:
    manifest = NPM_PREFIX / "node_modules" / "postgraphile" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def set_up(state: LabState) -> None:
    if not (state.dir / "ca" / "ca.crt").exists():  # a re-run keeps the lab's CA
        tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB} CA")
    say("deploys/site.py")
    deploy(state, "deploys/site.py")
    migrate(state)
    migrate(state, SEED)
    say("deploys/gateway.py on gw1 and gw2, rate limits raised")
    deploy(
        state,
        "deploys/gateway.py",
        "--data",
        f"gateway_limits={json.dumps(LIMITS)}",
    )
    ssh(state, GATEWAY_HOST, f"systemctl restart {GATEWAY_UNIT}")
    # On gw2 the gateway's deploy leaves the certificate PostGraphile serves
    # with; the gateway itself is stopped to leave the host to PostGraphile.
    ssh(state, POSTGRAPHILE_HOST, f"systemctl stop {GATEWAY_UNIT}")


def install(state: LabState, query_scripts: dict[str, str]) -> None:
    """wrk on client1, pgbench on gw1, Node and PostGraphile on gw2."""
    say("installing wrk, pgbench and nodejs on the lab hosts")
    ssh(state, LOADGEN, apt_install("wrk") + "; command -v wrk")
    ssh(state, PGBENCH_HOST, apt_install("postgresql-15") + f"; test -x {PGBENCH}")
    ssh(state, POSTGRAPHILE_HOST, apt_install("nodejs") + "; node --version")
    bundle = postgraphile_bundle()
    subprocess.run(
        state.ssh_argv(
            POSTGRAPHILE_HOST, "sh", "-c", f"mkdir -p {WORK} && tar -xzf - -C {WORK}"
        ),
        input=bundle,
        check=True,
        capture_output=True,
        timeout=300,
    )
    password = (state.dir / "secrets" / "db1" / "authenticator").read_text().strip()
    secret = (state.dir / "secrets" / "gateway" / "jwt-secret").read_text().strip()
    ca = (state.dir / "ca" / "ca.crt").read_text()
    config = {
        "db": state.hosts["db1"].address,
        "ca": "/etc/pgfortress-gateway/ca.crt",
        "key": "/etc/pgfortress-gateway/tls.key",
        "cert": "/etc/pgfortress-gateway/tls.crt",
        "passwordFile": f"{WORK}/authenticator",
        "jwtSecretFile": f"{WORK}/jwt-secret",
        "listen": state.hosts[POSTGRAPHILE_HOST].address,
        "port": POSTGRAPHILE_PORT,
    }
    files = {
        PGBENCH_HOST: {
            "ca.crt": ca,
            "pgpass": f"*:*:*:authenticator:{password}\n",
            **{f"txn-{key}.sql": text for key, text in query_scripts.items()},
        },
        POSTGRAPHILE_HOST: {
            "server.js": SERVER_JS,
            "config.json": json.dumps(config),
            "authenticator": password + "\n",
            "jwt-secret": secret + "\n",
        },
        LOADGEN: {"ca.crt": ca},
    }
    for host, contents in files.items():
        ssh(state, host, f"umask 077; mkdir -p {WORK}")
        for name, text in contents.items():
            ssh(state, host, f"umask 077; cat > {WORK}/{name}", stdin=text)
    ssh(
        state,
        POSTGRAPHILE_HOST,
        f"systemd-run --unit {POSTGRAPHILE_UNIT} --working-directory {WORK} "
        f"--setenv NODE_ENV=production /usr/bin/node {WORK}/server.js "
        f"{WORK}/config.json",
    )


def tokens(state: LabState, audience: str | None) -> list[str]:
    """HS256 tokens for ``web_user``, one subject each."""
    secret = (state.dir / "secrets" / "gateway" / "jwt-secret").read_text().strip()
    expires = int(time.time()) + 3600
    extra = {"aud": audience} if audience else {}
    return [
        jwt.encode(
            {"role": "web_user", "sub": f"bench-{n}", "exp": expires, **extra},
            secret,
            algorithm="HS256",
        )
        for n in range(SUBJECTS)
    ]


def url(state: LabState, side: str, query: Query) -> str:
    if side == "gateway":
        return f"https://{state.hosts[GATEWAY_HOST].address}:8443{query.path}"
    return (
        f"https://{state.hosts[POSTGRAPHILE_HOST].address}:{POSTGRAPHILE_PORT}/graphql"
    )


def wrk_script(bearers: list[str], threads: int, side: str, query: Query) -> str:
    body = json.dumps(json.dumps({"query": query.graphql}))
    return WRK_SCRIPT % {
        "tokens": ", ".join(f'"{bearer}"' for bearer in bearers),
        "per_thread": len(bearers) // threads,
        "method": "GET" if side == "gateway" else "POST",
        "body": "nil" if side == "gateway" else body,
    }


CHECK = """
import json, ssl, sys, time, urllib.request
url, ca, method = sys.argv[1], sys.argv[2], sys.argv[3]
bearer, body = sys.stdin.read().split("\\n", 1)
context = ssl.create_default_context(cafile=ca)
headers = {"Authorization": "Bearer " + bearer, "Content-Type": "application/json"}
for _ in range(60):
    data = body.encode() if method == "POST" else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            print(json.dumps(json.loads(answer.read())))
            sys.exit(0)
    except OSError as error:
        last = error
        time.sleep(1)
sys.exit(f"no answer from {url}: {last}")
"""


def check_answers(state: LabState, gateway: list[str], graphile: list[str]) -> None:
    """One verified call per side and query: the right number of rows, no error."""
    ssh(state, LOADGEN, f"cat > {WORK}/check.py", stdin=CHECK)
    for query in QUERIES:
        for side, bearer in (("gateway", gateway[0]), ("postgraphile", graphile[0])):
            method = "GET" if side == "gateway" else "POST"
            body = json.dumps({"query": query.graphql}) if method == "POST" else ""
            answer = json.loads(
                ssh(
                    state,
                    LOADGEN,
                    f"python3 {WORK}/check.py {shlex.quote(url(state, side, query))} "
                    f"{WORK}/ca.crt {method}",
                    stdin=f"{bearer}\n{body}",
                )
            )
            rows = _rows(answer, side)
            if rows != query.rows:
                raise BenchError(f"{side} {query.key}: {rows} rows: {answer!r:.300}")
            say(f"{side} answers {query.label}: {rows} row(s)")


def _rows(answer: Any, side: str) -> int:
    if side == "gateway":
        return len(answer)
    data = answer.get("data") or {}
    if "errors" in answer or not data:
        return -1
    found = next(iter(data.values()))
    return len(found["nodes"]) if "nodes" in found else 1


def run_wrk(
    state: LabState, side: str, query: Query, concurrency: int, seconds: int
) -> dict[str, Any]:
    host, unit = (
        (GATEWAY_HOST, GATEWAY_UNIT)
        if side == "gateway"
        else (POSTGRAPHILE_HOST, POSTGRAPHILE_UNIT)
    )
    threads = min(2, concurrency)
    before = sample_gateway(state, host, unit)
    output = ssh(
        state,
        LOADGEN,
        f"wrk -t{threads} -c{concurrency} -d{seconds}s --latency "
        f"-s {WORK}/{side}-{query.key}-{threads}.lua "
        + shlex.quote(url(state, side, query)),
    )
    after = sample_gateway(state, host, unit)
    figures = parse_wrk(output)
    return {
        **figures.as_dict(),
        "cpu_cores": round((after.cpu_s - before.cpu_s) / (after.at - before.at), 3),
        "rss_mib": round(after.rss_kib / 1024, 1),
    }


def run_pgbench(
    state: LabState, query: Query, concurrency: int, seconds: int
) -> dict[str, Any]:
    clients = min(concurrency, PGBENCH_MAX_CLIENTS)
    conninfo = (
        f"host={state.hosts['db1'].address} dbname=app user=authenticator "
        f"sslmode=verify-full sslrootcert={WORK}/ca.crt passfile={WORK}/pgpass"
    )
    output = ssh(
        state,
        PGBENCH_HOST,
        f"cd {WORK} && rm -f pgb.* && {PGBENCH} -n -f txn-{query.key}.sql "
        f"-c {clients} -j {min(2, clients)} -T {seconds} -M prepared -l "
        f"--log-prefix=pgb {shlex.quote(conninfo)}",
    )
    log = ssh(state, PGBENCH_HOST, f"cat {WORK}/pgb.*")
    figures = parse_pgbench(output, log.splitlines())
    return {**figures.as_dict(), "clients": clients}


def measure(state: LabState, seconds: int, rounds: int) -> list[dict[str, Any]]:
    """Every cell ``rounds`` times, the three sides interleaved within a cell."""
    for query in QUERIES:
        for side in ("gateway", "postgraphile"):
            say(f"warm-up: 5 s of {side} {query.key} (not counted)")
            run_wrk(state, side, query, 8, 5)
    cells = []
    for query in QUERIES:
        for concurrency in CONCURRENCIES:
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
            for _ in range(rounds):
                runs["pgbench"].append(run_pgbench(state, query, concurrency, seconds))
                for side in ("gateway", "postgraphile"):
                    runs[side].append(run_wrk(state, side, query, concurrency, seconds))
            cell = summarise_cell(query, concurrency, runs)
            say(
                f"{query.key} c={concurrency}: "
                + ", ".join(
                    f"{side} {cell[side]['requests_per_s']:.0f}/s" for side in SIDES
                )
            )
            cells.append(cell)
    return cells


def summarise_cell(
    query: Query, concurrency: int, runs: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    cell: dict[str, Any] = {"query": query.key, "concurrency": concurrency}
    for side, side_runs in runs.items():
        figures = median_of(
            [
                Figures(r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["requests"], 0)
                for r in side_runs
            ]
        )
        middle = len(side_runs) // 2
        cell[side] = {
            **figures.as_dict(),
            "failures": sum(r["failures"] for r in side_runs),
            "cpu_cores": sorted(r.get("cpu_cores", 0.0) for r in side_runs)[middle],
            "rss_mib": side_runs[-1].get("rss_mib"),
            "runs": side_runs,
        }
    gateway, graphile = cell["gateway"], cell["postgraphile"]
    cell["gateway_to_pgbench"] = round(
        gateway["requests_per_s"] / cell["pgbench"]["requests_per_s"], 3
    )
    cell["gateway_to_postgraphile"] = round(
        gateway["requests_per_s"] / graphile["requests_per_s"], 2
    )
    return cell


def environment(seconds: int, rounds: int) -> dict[str, Any]:
    return {
        **run_context(),
        "lab": LAB,
        "seconds_per_run": seconds,
        "rounds": rounds,
        "postgraphile": postgraphile_version(),
        "queries": {
            q.key: {"gateway": f"GET {q.path}", "graphql": q.graphql} for q in QUERIES
        },
        "pgbench_max_clients": PGBENCH_MAX_CLIENTS,
        "command": COMMAND,
    }


START = "<!-- gateway_vs_postgraphile: written by bench/gateway_vs_postgraphile.py -->"
END = "<!-- /gateway_vs_postgraphile -->"


def cpu_per_request(side: dict[str, Any]) -> float:
    """Microseconds of the server's CPU per answered request (median run)."""
    return float(side["cpu_cores"]) / float(side["requests_per_s"]) * 1e6


def section(results: dict[str, Any]) -> str:
    env = results["environment"]
    rows = [
        "| request | clients | pgbench/s | gateway/s | PostGraphile/s "
        "| gateway p50/p99 ms | PostGraphile p50/p99 ms | gateway CPU, RSS "
        "| PostGraphile CPU, RSS | CPU µs per request, gateway/PostGraphile "
        "| gateway ÷ pgbench | gateway ÷ PostGraphile |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {q.key: q.label for q in QUERIES}
    for cell in results["cells"]:
        pg, gw, pgl = cell["pgbench"], cell["gateway"], cell["postgraphile"]
        failures = ""
        if gw["failures"] or pgl["failures"]:
            failures = f" (failed: gateway {gw['failures']}, PostGraphile "
            failures += f"{pgl['failures']})"
        rows.append(
            f"| {labels[cell['query']]} | {cell['concurrency']} "
            f"| {pg['requests_per_s']:.0f} | {gw['requests_per_s']:.0f} "
            f"| {pgl['requests_per_s']:.0f} "
            f"| {gw['p50_ms']:.1f} / {gw['p99_ms']:.1f} "
            f"| {pgl['p50_ms']:.1f} / {pgl['p99_ms']:.1f} "
            f"| {gw['cpu_cores']:.2f}, {gw['rss_mib']:.0f} MiB "
            f"| {pgl['cpu_cores']:.2f}, {pgl['rss_mib']:.0f} MiB "
            f"| {cpu_per_request(gw):.0f} / {cpu_per_request(pgl):.0f} "
            f"| {cell['gateway_to_pgbench']:.2f} "
            f"| {cell['gateway_to_postgraphile']:.2f}{failures} |"
        )
    at32 = {c["query"]: c for c in results["cells"] if c["concurrency"] == 32}
    one = at32["one"]
    return f"""{START}
## Gateway against pgbench and PostGraphile 4, concurrency 1 to 128

Repeat (as root, from the repository; about 25 minutes with the lab set-up):

    {env["command"]}

Run {env["date"]} at `{env["commit"]}` on {env["machine"]}; PostGraphile
{env["postgraphile"]}; {env["rounds"]} run(s) of {env["seconds_per_run"]} s per
cell, the three sides interleaved within each cell, medians shown.

{chr(10).join(rows)}

**At concurrency 32, single row: gateway ÷ pgbench
{one["gateway_to_pgbench"]:.2f}, gateway ÷ PostGraphile
{one["gateway_to_postgraphile"]:.2f}** (issue 7's targets: ≥ 0.5 and ≥ 1.5;
goal 0.6 and 2).

The requests: the gateway's `{env["queries"]["one"]["gateway"]}` against
PostGraphile's `{env["queries"]["one"]["graphql"]}`, and
`{env["queries"]["hundred"]["gateway"]}` against
`{env["queries"]["hundred"]["graphql"]}`. Both servers answer over HTTPS
with the same certificate, verify an HS256 token per request (512 subjects,
cycled), switch to the token's role with `SET LOCAL ROLE` inside one
transaction, set the claims, and reach PostgreSQL through a pool of 10 TLS
connections as the authenticator. pgbench runs the gateway's transaction for
the same request (at most {env["pgbench_max_clients"]} clients: db1 allows
100 connections). The gateway runs as deployed, one process, with its rate
limits raised so that they are checked but never refuse; PostGraphile runs
in library mode under Node's HTTPS server (`bench/gateway_vs_postgraphile.py`
holds its options). CPU is cores used by each server's processes during the
run, and per answered request; RSS at the end. Every lab host shares the
machine's two cores, and wrk, PostgreSQL and the other server compete with
the one measured: read the figures side by side, not as absolute capacities.
CPU per request is the steadiest of them on a busy machine.
{END}
"""


def write_doc(results: dict[str, Any]) -> None:
    DOC.write_text(replace_section(DOC.read_text(), START, END, section(results)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=15, help="per timed run")
    parser.add_argument("--rounds", type=int, default=1, help="runs per cell")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root: run it with sudo")
    say(f"bringing up lab {LAB}")
    state = labs.up(LAB, HOSTS)
    try:
        set_up(state)
        install(state, {q.key: transaction_script(q) for q in QUERIES})
        gateway_tokens = tokens(state, None)
        graphile_tokens = tokens(state, "postgraphile")
        for side, bearers in (
            ("gateway", gateway_tokens),
            ("postgraphile", graphile_tokens),
        ):
            for query in QUERIES:
                for threads in (1, 2):
                    script = wrk_script(bearers, threads, side, query)
                    name = f"{WORK}/{side}-{query.key}-{threads}.lua"
                    ssh(state, LOADGEN, f"umask 077; cat > {name}", stdin=script)
        check_answers(state, gateway_tokens, graphile_tokens)
        cells = measure(state, args.seconds, args.rounds)
    finally:
        say(f"taking lab {LAB} down")
        labs.down(LAB)
    results = {"environment": environment(args.seconds, args.rounds), "cells": cells}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results)
    for cell in cells:
        print(
            f"{cell['query']:>8} c={cell['concurrency']:<4} "
            + "  ".join(f"{s} {cell[s]['requests_per_s']:8.0f}/s" for s in SIDES)
            + f"  gw/pgbench {cell['gateway_to_pgbench']:.2f}"
            + f"  gw/postgraphile {cell['gateway_to_postgraphile']:.2f}"
        )
    say(f"wrote {RESULTS} and {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
