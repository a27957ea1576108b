"""Gateway memory over one million authorised requests.

Run as root from the repository (it boots lab hosts)::

    sudo .venv/bin/python -m bench.gateway_memory

One run brings up lab ``bmem`` (db1, gw1, client1), deploys the database, the
application of docs/examples/api-app.sql plus 100 orders of one customer, and
the gateway on gw1 as shipped (one process, counters in memory) except for its
rate limits, raised as in bench/gateway_vs_pgbench.py so that the limiter
still runs on every request but never refuses one.

wrk on client1 then calls the gateway with 32 connections, alternating the
single-row GET (``/customers?id=eq.1``) and a 100-row filtered GET
(``/orders?customer_id=eq.3``), in timed segments until one million requests
have been answered. After each segment the benchmark reads the gateway's
memory on gw1, summed over every process of its unit: RSS (``VmRSS``) and PSS
(``Pss`` of ``smaps_rollup``, cheap since Linux 4.14). A sampler on gw1 also
records both every SAMPLE_EVERY seconds for the whole run.

Warm-up is over at the first segment that ends at or after WARM_UP requests;
its sample is the reference. Target: RSS at the end within 10 % of it. The
gateway's main PID must be the same at the end as at the start (a restart
would reset its memory and void the figure). Only requests answered with 200
count towards the million; failed ones (non-2xx, or no answer within
TIMEOUT_S) are counted apart, and more than MAX_FAILED of them stop the run.

Figures go to bench/results/gateway_memory.json and a section of
docs/benchmarks.md; the lab is taken down again, also when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from tests.lab._api import migrate

from ._figures import Figures, parse_wrk, replace_section
from ._lab import BenchError, deploy, run_context, say, ssh
from .gateway_vs_pgbench import LIMITS, READY, UNIT, tokens

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "gateway_memory.json"
DOC = REPO / "docs" / "benchmarks.md"
COMMAND = "sudo .venv/bin/python -m bench.gateway_memory"

LAB = "bmem"
HOSTS = ["db1", "gw1", "client1"]
GATEWAY = "gw1"
LOADGEN = "client1"
WORK = "/root/bench"
CONCURRENCY = 32
WRK_THREADS = 2
SUBJECTS_PER_THREAD = 256
SINGLE = "/customers?id=eq.1"
MANY = "/orders?customer_id=eq.3"
MANY_ROWS = 100
WARM_UP = 50_000
TOTAL = 1_000_000
TARGET = 0.10
SAMPLE_EVERY = 5
# wrk's default of 2 s counts a slow answer as a socket error; the gateway's
# own statement timeout is 10 s. A failed request is reported, not counted
# among the answered ones; beyond MAX_FAILED of them the run stops.
TIMEOUT_S = 10
MAX_FAILED = 0.001

# 100 orders of one more customer, for the 100-row filtered GET.
ROWS = f"""
SET ROLE app_owner;
INSERT INTO api.customers VALUES (3, 'Bench');
INSERT INTO api.orders (id, customer_id, total)
  SELECT 1000 + n, 3, n * 1.5 FROM generate_series(1, {MANY_ROWS}) AS n;
"""  # noqa: S608

# As in gateway_vs_pgbench: each wrk thread cycles through its own subjects
# (the gateway refuses a subject holding more than half its pool); each
# subject's requests alternate the two paths.
WRK_SCRIPT = """
local tokens = {%s}
local per_thread = %d
local paths = {"%s", "%s"}
local threads = 0
local prepared = {}
local next_one = 0

function setup(thread)
  thread:set("first", threads * per_thread)
  threads = threads + 1
end

function init(args)
  for i = 1, per_thread do
    local headers = {Authorization = "Bearer " .. tokens[first + i]}
    for p = 1, 2 do
      prepared[#prepared + 1] = wrk.format("GET", paths[p], headers)
    end
  end
end

function request()
  next_one = next_one %% #prepared + 1
  return prepared[next_one]
end
"""

# Every process of the unit: RSS and PSS in KiB, and the main PID.
MEMORY = r"""
CG=/sys/fs/cgroup$(systemctl show -p ControlGroup --value {unit})
R=0; S=0
for P in $(cat $CG/cgroup.procs); do
  R=$((R + $(awk '/^VmRSS:/ {{print $2}}' /proc/$P/status)))
  S=$((S + $(awk '/^Pss:/ {{print $2}}' /proc/$P/smaps_rollup)))
done
echo "$(date +%s.%N) $R $S $(systemctl show -p MainPID --value {unit})"
"""

SAMPLER = f"""
while :; do sh {WORK}/memory.sh >> {WORK}/samples.txt 2>&1; sleep {SAMPLE_EVERY}; done
"""


@dataclass(frozen=True)
class Sample:
    """The gateway's memory at one instant, after ``requests`` answers."""

    at: float
    requests: int
    rss_kib: int
    pss_kib: int
    main_pid: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_memory(line: str, requests: int) -> Sample:
    at, rss, pss, pid = line.split()
    return Sample(float(at), requests, int(rss), int(pss), int(pid))


def wrk_script(bearers: list[str]) -> str:
    quoted = ", ".join(f'"{bearer}"' for bearer in bearers)
    return WRK_SCRIPT % (quoted, SUBJECTS_PER_THREAD, SINGLE, MANY)


def set_up(state: LabState) -> list[str]:
    tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB} CA")
    say("deploys/site.py on db1")
    deploy(state, "deploys/site.py")
    migrate(state)
    migrate(state, ROWS)
    say("deploys/gateway.py on gw1: 1 process, counters in memory (default)")
    deploy(
        state,
        "deploys/gateway.py",
        "--data",
        f"gateway_limits={json.dumps(LIMITS)}",
    )
    ssh(state, GATEWAY, f"systemctl restart {UNIT}")
    say("installing wrk on client1")
    ssh(
        state,
        LOADGEN,
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q "
        ">/dev/null; apt-get install -y -q wrk >/dev/null; command -v wrk",
    )
    bearers = tokens(state)[: SUBJECTS_PER_THREAD * WRK_THREADS]
    ca = (state.dir / "ca" / "ca.crt").read_text()
    files = {
        LOADGEN: {"ca.crt": ca, "tokens.lua": wrk_script(bearers), "ready.py": READY},
        GATEWAY: {"memory.sh": MEMORY.format(unit=UNIT), "sampler.sh": SAMPLER},
    }
    for host, contents in files.items():
        ssh(state, host, f"umask 077; mkdir -p {WORK}")
        for name, text in contents.items():
            ssh(state, host, f"umask 077; cat > {WORK}/{name}", stdin=text)
    return bearers


def url(state: LabState, path: str) -> str:
    return f"https://{state.hosts[GATEWAY].address}:8443{path}"


def check_answers(state: LabState, bearer: str) -> None:
    """One verified HTTPS call per path: the token works and the rows are there."""
    for path, rows in ((SINGLE, 1), (MANY, MANY_ROWS)):
        answer = ssh(
            state,
            LOADGEN,
            f"python3 {WORK}/ready.py {shlex.quote(url(state, path))} {WORK}/ca.crt",
            stdin=bearer,
        )
        status, _, body = answer.strip().partition(" ")
        if status != "200" or len(json.loads(body)) != rows:
            raise BenchError(f"{path}: expected {rows} row(s), got {answer[:300]!r}")
        say(f"{path} answers 200 with {rows} row(s)")


def sample(state: LabState, requests: int) -> Sample:
    return parse_memory(ssh(state, GATEWAY, f"sh {WORK}/memory.sh").strip(), requests)


def run_segment(state: LabState, seconds: int) -> tuple[Figures, list[str]]:
    """One wrk run; its figures and, if any request failed, wrk's lines
    saying how (non-2xx answers, socket errors)."""
    output = ssh(
        state,
        LOADGEN,
        f"wrk -t{WRK_THREADS} -c{CONCURRENCY} -d{seconds}s --timeout {TIMEOUT_S}s "
        f"--latency -s {WORK}/tokens.lua " + shlex.quote(url(state, SINGLE)),
    )
    figures = parse_wrk(output)
    failed = [
        line.strip()
        for line in output.splitlines()
        if line.strip().startswith(("Non-2xx", "Socket errors"))
    ]
    return figures, failed


def start_sampler(state: LabState) -> int:
    command = (
        f"rm -f {WORK}/samples.txt; setsid sh {WORK}/sampler.sh "
        "</dev/null >/dev/null 2>&1 & echo $!"
    )
    return int(ssh(state, GATEWAY, command).strip())


def stop_sampler(state: LabState, pid: int) -> list[dict[str, Any]]:
    ssh(state, GATEWAY, f"kill {pid}")
    lines = ssh(state, GATEWAY, f"cat {WORK}/samples.txt").splitlines()
    samples = []
    for line in lines:
        at, rss, pss, main_pid = line.split()
        samples.append(
            {"at": float(at), "rss_kib": int(rss), "pss_kib": int(pss)}
            | {"main_pid": int(main_pid)}
        )
    return samples


def measure(state: LabState, seconds: int, total: int) -> dict[str, Any]:
    say(f"load: {total} requests in segments of {seconds} s")
    first = sample(state, 0)
    sampler = start_sampler(state)
    started = time.monotonic()
    samples = [first]
    segments: list[dict[str, Any]] = []
    answered = failures = 0
    try:
        while answered < total:
            figures, failed = run_segment(state, seconds)
            answered += figures.requests - figures.failures
            failures += figures.failures
            if failures > total * MAX_FAILED:
                raise BenchError(f"{failures} requests failed; last: {failed}")
            samples.append(sample(state, answered))
            segments.append(figures.as_dict() | {"failed_how": failed})
            say(
                f"{answered} requests, {figures.requests_per_s:.0f}/s, RSS "
                f"{samples[-1].rss_kib / 1024:.1f} MiB, PSS "
                f"{samples[-1].pss_kib / 1024:.1f} MiB"
            )
    finally:
        background = stop_sampler(state, sampler)
    results = summarise(samples, segments, background, time.monotonic() - started)
    return results | {"failed_requests": failures}


def summarise(
    samples: list[Sample],
    segments: list[dict[str, Any]],
    background: list[dict[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    pids = {s.main_pid for s in samples} | {b["main_pid"] for b in background}
    if len(pids) != 1:
        raise BenchError(f"the gateway's main PID changed during the run: {pids}")
    warm = next(s for s in samples if s.requests >= WARM_UP)
    end = samples[-1]
    growth = (end.rss_kib - warm.rss_kib) / warm.rss_kib
    growth_pss = (end.pss_kib - warm.pss_kib) / warm.pss_kib
    peak = max([s.rss_kib for s in samples] + [b["rss_kib"] for b in background])
    return {
        "requests": end.requests,
        "seconds": round(seconds, 1),
        "requests_per_s": round(end.requests / seconds, 1),
        "start": samples[0].as_dict(),
        "warm_up": warm.as_dict(),
        "end": end.as_dict(),
        "peak_rss_kib": peak,
        "rss_growth": round(growth, 4),
        "pss_growth": round(growth_pss, 4),
        "meets": growth <= TARGET,
        "samples": [s.as_dict() for s in samples],
        "segments": segments,
        "background_samples": background,
    }


def environment(state: LabState, seconds: int) -> dict[str, Any]:
    return {
        **run_context(),
        "lab": state.name,
        "concurrency": CONCURRENCY,
        "segment_seconds": seconds,
        "paths": [SINGLE, MANY],
        "warm_up_requests": WARM_UP,
        "subjects": SUBJECTS_PER_THREAD * WRK_THREADS,
        "command": COMMAND,
    }


START = "<!-- gateway_memory: written by bench/gateway_memory.py -->"
END = "<!-- /gateway_memory -->"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def section(results: dict[str, Any]) -> str:
    env = results["environment"]
    warm, end = results["warm_up"], results["end"]
    verdict = "met" if results["meets"] else "missed"
    rows = [
        "| point | requests | RSS | PSS |",
        "|---|---|---|---|",
        f"| gateway started, idle | 0 | {_mib(results['start']['rss_kib'])} "
        f"| {_mib(results['start']['pss_kib'])} |",
        f"| after warm-up | {warm['requests']} | {_mib(warm['rss_kib'])} "
        f"| {_mib(warm['pss_kib'])} |",
        f"| end | {end['requests']} | {_mib(end['rss_kib'])} "
        f"| {_mib(end['pss_kib'])} |",
    ]
    return f"""{START}
## Gateway memory over one million requests

Repeat (as root, from the repository; this run took {results["minutes"]:.0f}
minutes with the lab set-up):

    {env["command"]}

Run {env["date"]} at `{env["commit"]}` on {env["machine"]}:
{results["requests"]} authorised requests in {results["seconds"]:.0f} s
({results["requests_per_s"]:.0f}/s), wrk on client1 with {env["concurrency"]}
connections alternating `GET {env["paths"][0]}` (one row) and
`GET {env["paths"][1]}` (100 rows) on the gateway of gw1 (one process, as
deployed, rate limits raised so that they never refuse), in segments of
{env["segment_seconds"]} s. Counted: answers with 200; {results["failed_requests"]}
request(s) failed besides (wrk's words for them are in the JSON). The gateway's
main process was the same from start to end.

{chr(10).join(rows)}

**RSS at the end against RSS after warm-up: {results["rss_growth"]:+.1%}**
(PSS {results["pss_growth"]:+.1%}); target within 10 %: {verdict}. Peak RSS
{_mib(results["peak_rss_kib"])}. Warm-up is over at the first segment that
ends at or after {env["warm_up_requests"]} requests. Memory is summed over
the processes of the gateway's unit; the JSON holds a sample after each
segment and one every 5 s from a sampler on gw1.
{END}
"""


def write_doc(results: dict[str, Any]) -> None:
    DOC.write_text(replace_section(DOC.read_text(), START, END, section(results)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--segment", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=TOTAL, help="in all")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root: run it with sudo")
    say(f"bringing up lab {LAB}")
    started = time.monotonic()
    state = labs.up(LAB, HOSTS)
    try:
        bearers = set_up(state)
        check_answers(state, bearers[0])
        results = measure(state, args.segment, args.requests)
        results["environment"] = environment(state, args.segment)
    finally:
        say(f"taking lab {LAB} down")
        labs.down(LAB)
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    write_doc(results)
    say(
        f"RSS after warm-up {_mib(results['warm_up']['rss_kib'])}, at the end "
        f"{_mib(results['end']['rss_kib'])} ({results['rss_growth']:+.1%}); "
        f"wrote {RESULTS} and {DOC}"
    )
    return 0 if results["meets"] else 1


if __name__ == "__main__":
    sys.exit(main())
