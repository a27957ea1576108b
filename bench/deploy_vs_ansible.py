"""Deploy cost: pgfortress's deploys/site.py against an equivalent Ansible playbook.

Run as root from the repository (it boots lab hosts)::

    sudo .venv/bin/python -m bench.deploy_vs_ansible

Each round brings up lab ``bdep`` afresh with three hosts: db1 and db2 are
twins (the same cached root filesystem, apt through the lab's caching proxy),
gw1 is for the gateway. Then, the order of the tools swapping each round:

1. pgfortress deploys fresh db1 (``deploys/site.py --limit db1``: hardened
   PostgreSQL, the probe database role and the database roles of
   specs/lab.yml), then the gateway on fresh gw1 (``deploys/gateway.py``),
   timed apart so that the database host compares like for like;
2. Ansible deploys fresh db2 with bench/ansible/site.yml, the same work as
   step 1's database host (the playbook installs no gateway);
3. each of the three is re-run ``--noops`` times, interleaved, counting the
   changes each one reports;

and the lab is taken down again, also when a step fails. After the first
round, db1 and db2 are compared: the PostgreSQL settings pgfortress manages,
the rules PostgreSQL loaded from pg_hba.conf, the owner and mode of each
managed file, the database roles, memberships and privileges. After the last
round, one more no-op run of each pgfortress deploy with ``--debug`` counts
its SSH commands, per fact class and per operation.

Ansible (the ``ansible`` package of PyPI, ANSIBLE pinned below: the newest
release that installs on this Python) lives in its own virtual environment
under TOOLS, made on the first run. Figures go to
bench/results/deploy_vs_ansible.json and a section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgfortress import lab as labs
from pgfortress import scram, tls
from pgfortress.lab import LabState
from pgfortress.secrets import SecretStore, write_file_atomically

from ._figures import replace_section
from ._lab import BenchError, run_context, say, ssh

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "deploy_vs_ansible.json"
DOC = REPO / "docs" / "benchmarks.md"
PLAYBOOK_DIR = REPO / "bench" / "ansible"
COMMAND = "sudo .venv/bin/python -m bench.deploy_vs_ansible"

LAB = "bdep"
# pgfortress deploys db1 and its gateway gw1 (inventories/lab.py points the
# gateway at the first db host); Ansible deploys db2, db1's twin.
HOSTS = ["db1", "db2", "gw1"]
PGF_HOST, ANSIBLE_HOST, GATEWAY_HOST = HOSTS
TOOLS = Path("/var/cache/pgfortress/tools/ansible-12")
# ansible 12 is the newest major release for Python 3.11 (13 needs 3.12).
ANSIBLE = "ansible==12.3.0"
PROBE_ROLE = "pgfortress_probe"
SPEC_LOGIN_ROLES = ["app_migrator", "app_rw", "app_ro", "reporting", "authenticator"]
TARGET_FRESH = 1.0
TARGET_NOOP = 0.3


@dataclass(frozen=True)
class Run:
    """One timed deploy of one host."""

    tool: str
    host: str
    kind: str  # "fresh" or "noop"
    seconds: float
    changed: int
    operations: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_ansible() -> Path:
    """The tool venv's ansible-playbook, installed on the first run."""
    playbook = TOOLS / "bin" / "ansible-playbook"
    if playbook.exists():
        return playbook
    say(f"installing {ANSIBLE} into {TOOLS}")
    subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)
    pip = [str(TOOLS / "bin" / "pip"), "install", "-q", ANSIBLE]
    subprocess.run(pip, check=True)
    return playbook


def ansible_version(playbook: Path) -> str:
    core = subprocess.run(
        [str(playbook), "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    manifest = next(
        TOOLS.glob(
            "lib/python*/site-packages/ansible_collections/community/postgresql/"
            "MANIFEST.json"
        )
    )
    collection = json.loads(manifest.read_text())["collection_info"]["version"]
    return f"{ANSIBLE} ({core.strip()}, community.postgresql {collection})"


# --- pgfortress's side ------------------------------------------------------

_PYINFRA_TOTAL = re.compile(
    r"^\s*Grand total\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", re.M
)


def _count(text: str) -> int:
    return 0 if text == "-" else int(text)


def parse_pyinfra_total(output: str) -> tuple[int, int]:
    """Operations and how many changed something, from pyinfra's results table."""
    match = _PYINFRA_TOTAL.search(output)
    if match is None:
        raise BenchError("pyinfra printed no results table:\n" + output[-3000:])
    operations, changed, errors = (_count(match.group(i)) for i in (1, 2, 3))
    if errors:
        raise BenchError(f"pyinfra reported {errors} failed operation(s)")
    return operations, changed


def pyinfra_deploy(
    state: LabState, host: str, script: str, *extra: str
) -> tuple[float, str]:
    """Run one deploy on one host; its wall time and everything it printed."""
    env = os.environ | {"PGFORTRESS_LAB": state.name, "PYTHONUNBUFFERED": "1"}
    pyinfra = Path(sys.executable).parent / "pyinfra"
    argv = [str(pyinfra), "-y", *extra, "--limit", host, "inventories/lab.py", script]
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise BenchError(f"{script} on {host} failed:\n{output[-4000:]}")
    return seconds, output


def run_pgfortress(state: LabState, host: str, kind: str) -> Run:
    seconds, output = pyinfra_deploy(state, host, "deploys/site.py")
    operations, changed = parse_pyinfra_total(output)
    return Run("pgfortress", host, kind, seconds, changed, operations)


def run_gateway(state: LabState, host: str, kind: str) -> Run:
    seconds, output = pyinfra_deploy(state, host, "deploys/gateway.py")
    operations, changed = parse_pyinfra_total(output)
    return Run("gateway", host, kind, seconds, changed, operations)


_COMMAND = re.compile(r"\[pyinfra\.connectors\.ssh\] Running command on ")
_UPLOAD = re.compile(r"\[pyinfra\.connectors\.ssh\] Uploading file")
_FACT = re.compile(r"Loaded fact ([\w.]+)")
_OPERATION = re.compile(r"^--> Starting operation: (.+?)\s*$")


def round_trips(output: str) -> dict[str, Any]:
    """SSH commands and uploads of one ``pyinfra --debug`` run, by phase and fact.

    Facts are read while the operations are prepared, before the first
    "Starting operation"; what runs after that is counted per operation.
    """
    facts: dict[str, int] = {}
    per_operation: dict[str, int] = {}
    preparing, running, uploads = 0, 0, 0
    current: str | None = None
    for line in output.splitlines():
        started = _OPERATION.match(line)
        if started:
            current = started.group(1)
        elif _COMMAND.search(line):
            if current is None:
                preparing += 1
            else:
                running += 1
                per_operation[current] = per_operation.get(current, 0) + 1
        elif _UPLOAD.search(line):
            uploads += 1
        fact = _FACT.search(line)
        if fact:
            facts[fact.group(1)] = facts.get(fact.group(1), 0) + 1
    return {
        "ssh_commands": preparing + running,
        "while_preparing": preparing,
        "while_running": running,
        "uploads": uploads,
        "facts_by_class": dict(sorted(facts.items(), key=lambda kv: -kv[1])),
        "commands_by_operation": per_operation,
    }


def profile(state: LabState) -> dict[str, Any]:
    """One more, untimed-for-the-table, no-op run of each deploy with --debug."""
    found: dict[str, Any] = {}
    for host, script in (
        (PGF_HOST, "deploys/site.py"),
        (GATEWAY_HOST, "deploys/gateway.py"),
    ):
        seconds, output = pyinfra_deploy(state, host, script, "--debug")
        found[script] = {"seconds": seconds, **round_trips(output)}
    return found


# --- Ansible's side -----------------------------------------------------------

_RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


# One line per module execution (a loop runs the module once per item).
_ITEM_RESULT = re.compile(r"^(?:ok|changed|skipping): \[", re.M)


def parse_ansible_recap(output: str, host: str) -> tuple[int, int]:
    """Tasks run (ok) and changed, from the PLAY RECAP line of ``host``."""
    for match in _RECAP.finditer(output):
        if match.group(1) == host:
            ok, changed, unreachable, failed = (
                int(match.group(i)) for i in (2, 3, 4, 5)
            )
            if unreachable or failed:
                raise BenchError(f"ansible-playbook: {host} unreachable or failed")
            return ok, changed
    raise BenchError("ansible-playbook printed no recap for " + host)


def lab_policy(state: LabState) -> dict[str, Any]:
    """The db hosts' inventory data, read from inventories/lab.py itself."""
    os.environ["PGFORTRESS_LAB"] = state.name
    inventory = runpy.run_path(str(REPO / "inventories" / "lab.py"))
    data: dict[str, Any] = inventory["db"][1]
    return data


def prepare_ansible(state: LabState, host: str) -> Path:
    """Inventory and variables for the playbook on ``host``; returns their folder.

    The server pair comes from pgfortress's CA on this machine, issued for
    the same names and addresses as deploys/site.py would ask for; the
    passwords come from the lab's secret store, and only their SCRAM
    verifiers are handed to the playbook, in files readable by root only.
    """
    work = state.dir / "ansible" / host
    work.mkdir(parents=True, exist_ok=True, mode=0o700)
    node = state.hosts[host]
    ca = tls.load_ca(state.dir / "ca")
    tls.ensure_server_certificate(
        ca,
        state.dir / "ca" / "issued",
        host,
        dns_names=[host],
        ip_addresses=sorted([node.address, node.address6]),
    )
    store = SecretStore(state.dir / "secrets")
    verifiers = work / "verifiers"
    verifiers.mkdir(exist_ok=True, mode=0o700)
    for role in [PROBE_ROLE, *SPEC_LOGIN_ROLES]:
        path = verifiers / role
        if not path.exists():
            secret = store.get_or_create(f"{host}/{role}")
            write_file_atomically(
                path, scram.make_verifier(secret).encode(), mode=0o600
            )
    policy = lab_policy(state)
    variables = {
        "pg_hba": [
            {
                "type": rule["type"],
                "databases": rule["databases"],
                "users": rule["users"],
                "address": rule["address"],
                "method": rule["method"],
                "comment": rule.get("comment", ""),
            }
            for rule in policy["postgres_hba"]
        ],
        "pgf_ca_cert": str(state.dir / "ca" / "ca.crt"),
        "pgf_issued_dir": str(state.dir / "ca" / "issued" / host),
        "pgf_verifier_dir": str(verifiers),
    }
    (work / "vars.json").write_text(json.dumps(variables, indent=2) + "\n")
    inventory = {
        "db": {
            "hosts": {
                host: {
                    "ansible_host": host,
                    "ansible_user": "root",
                    "ansible_ssh_common_args": f"-F {state.ssh_config}",
                }
            }
        }
    }
    (work / "inventory.json").write_text(json.dumps(inventory, indent=2) + "\n")
    return work


def run_ansible(playbook: Path, work: Path, host: str, kind: str) -> Run:
    env = os.environ | {
        "ANSIBLE_CONFIG": str(PLAYBOOK_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
        "ANSIBLE_HOME": str(work / "home"),
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        str(playbook),
        "-i",
        str(work / "inventory.json"),
        "-e",
        f"@{work / 'vars.json'}",
        str(PLAYBOOK_DIR / "site.yml"),
    ]
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=PLAYBOOK_DIR, env=env, capture_output=True, text=True, timeout=900
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    (work / f"last-{kind}.log").write_text(output)
    (work / "module-runs").write_text(str(len(_ITEM_RESULT.findall(output))))
    if result.returncode != 0:
        raise BenchError(f"ansible-playbook on {host} failed:\n{output[-4000:]}")
    tasks, changed = parse_ansible_recap(output, host)
    return Run("ansible", host, kind, seconds, changed, tasks)


# --- Are the two hosts alike? -----------------------------------------------

# Each query's rows are compared as sets between the two hosts; addresses of
# the host itself are replaced by a placeholder first.
STATE_QUERIES = {
    "settings": (
        "SELECT name, setting FROM pg_settings WHERE name IN ("
        "'listen_addresses','port','unix_socket_directories','unix_socket_group',"
        "'unix_socket_permissions','password_encryption','ssl','ssl_cert_file',"
        "'ssl_key_file','ssl_ca_file','ssl_min_protocol_version','ssl_ciphers',"
        "'ssl_prefer_server_ciphers','log_connections','log_disconnections',"
        "'log_line_prefix','log_statement')"
    ),
    "hba_rules": (
        "SELECT type, database, user_name, address, netmask, auth_method, options, "
        "error FROM pg_hba_file_rules"
    ),
    "roles": (
        "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, "
        "r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, "
        "r.rolvaliduntil, r.rolconfig, a.rolpassword LIKE 'SCRAM-SHA-256$%', "
        "shobj_description(r.oid, 'pg_authid') FROM pg_roles r "
        "JOIN pg_authid a ON a.oid = r.oid "
        "WHERE r.rolname !~ '^pg_' AND r.rolname <> 'postgres'"
    ),
    "memberships": (
        "SELECT r.rolname, m.rolname FROM pg_auth_members a "
        "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
        "WHERE r.rolname !~ '^pg_'"
    ),
    "databases": (
        "SELECT datname, pg_get_userbyid(datdba), datacl FROM pg_database "
        "WHERE datname IN ('app', 'archive', 'postgres')"
    ),
}
APP_QUERIES = {
    "schemas": (
        "SELECT nspname, pg_get_userbyid(nspowner), nspacl FROM pg_namespace "
        "WHERE nspname IN ('app', 'api', 'public')"
    ),
    "default_privileges": (
        "SELECT pg_get_userbyid(defaclrole), defaclnamespace::regnamespace, "
        "defaclobjtype, defaclacl FROM pg_default_acl"
    ),
}
FILES = (
    "/etc/postgresql/15/main/conf.d/50-pgfortress.conf",
    "/etc/postgresql/15/main/pg_hba.conf",
    "/etc/postgresql/15/main/tls",
    "/etc/postgresql/15/main/tls/server.crt",
    "/etc/postgresql/15/main/tls/server.key",
    "/etc/postgresql/15/main/tls/ca.crt",
    "/usr/local/share/ca-certificates/pgfortress-ca.crt",
    "/var/run/postgresql/.s.PGSQL.5432",
)


def host_state(state: LabState, host: str) -> dict[str, list[str]]:
    """What the comparison looks at on one host, host addresses masked."""
    node = state.hosts[host]
    found: dict[str, list[str]] = {}
    for database, queries in (
        ("postgres", STATE_QUERIES),
        ("app", APP_QUERIES),
        ("archive", APP_QUERIES),
    ):
        for name, query in queries.items():
            label = name if database == "postgres" else f"{database}: {name}"
            command = (
                "runuser -u postgres -- env -C / psql -X -A -t -v ON_ERROR_STOP=1 "
                f"-d {database} -f -"
            )
            found[label] = ssh(state, host, command, query + ";\n").splitlines()
    files = " ".join(FILES)
    found["files"] = ssh(state, host, f"stat -c '%n %U:%G %a' {files}").splitlines()
    found["groups"] = ssh(state, host, "id -nG postgres").split()
    masked: dict[str, list[str]] = {}
    for label, rows in found.items():
        text = [
            row.replace(node.address6, "<host6>").replace(node.address, "<host>")
            for row in rows
        ]
        masked[label] = sorted(text)
    return masked


def compare_hosts(state: LabState, pgf_host: str, ansible_host: str) -> dict[str, Any]:
    """Rows found on one host and not the other, per aspect; empty when alike."""
    ours, theirs = host_state(state, pgf_host), host_state(state, ansible_host)
    differences: dict[str, Any] = {}
    for label in ours:
        only_pgf = sorted(set(ours[label]) - set(theirs[label]))
        only_ansible = sorted(set(theirs[label]) - set(ours[label]))
        if only_pgf or only_ansible:
            differences[label] = {"pgfortress": only_pgf, "ansible": only_ansible}
    return {"aspects": sorted(ours), "differences": differences}


# --- The rounds ---------------------------------------------------------------


def fresh_lab() -> LabState:
    labs.down(LAB)
    state = labs.up(LAB, HOSTS)
    tls.init_ca(state.dir / "ca", f"pgfortress lab {LAB} CA")
    return state


def one_round(
    number: int, playbook: Path, noops: int, last: bool
) -> tuple[list[Run], dict[str, Any] | None, dict[str, Any] | None]:
    """Fresh deploys, then no-op re-runs; the order of the tools swaps each round."""
    say(
        f"round {number + 1}: fresh lab {LAB}; pgfortress on {PGF_HOST} and "
        f"{GATEWAY_HOST}, Ansible on {ANSIBLE_HOST}"
    )
    state = fresh_lab()
    work = prepare_ansible(state, ANSIBLE_HOST)
    steps: list[Callable[[str], Run]] = [
        lambda kind: run_pgfortress(state, PGF_HOST, kind),
        lambda kind: run_gateway(state, GATEWAY_HOST, kind),
        lambda kind: run_ansible(playbook, work, ANSIBLE_HOST, kind),
    ]
    if number % 2 == 1:
        steps = [steps[2], steps[0], steps[1]]
    runs: list[Run] = []
    for kind in ["fresh"] + ["noop"] * noops:
        for step in steps:
            run = step(kind)
            say(
                f"  {run.tool} {run.kind} on {run.host}: {run.seconds:.1f} s, "
                f"{run.changed} of {run.operations} changed"
            )
            runs.append(run)
    comparison = compare_hosts(state, PGF_HOST, ANSIBLE_HOST) if number == 0 else None
    trips = None
    if last:
        trips = profile(state)
        trips["ansible site.yml module runs"] = int((work / "module-runs").read_text())
    return runs, comparison, trips


def summarise(runs: list[Run]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for tool in ("pgfortress", "gateway", "ansible"):
        for kind in ("fresh", "noop"):
            chosen = [r for r in runs if r.tool == tool and r.kind == kind]
            figures[f"{tool}_{kind}"] = {
                "median_s": statistics.median(r.seconds for r in chosen),
                "min_s": min(r.seconds for r in chosen),
                "max_s": max(r.seconds for r in chosen),
                "runs": len(chosen),
                "changed": sorted({r.changed for r in chosen}),
                "operations": sorted({r.operations for r in chosen}),
            }
    fresh = (
        figures["pgfortress_fresh"]["median_s"] / figures["ansible_fresh"]["median_s"]
    )
    noop = figures["pgfortress_noop"]["median_s"] / figures["ansible_noop"]["median_s"]
    figures["ratio_fresh"] = fresh
    figures["ratio_noop"] = noop
    figures["meets_fresh"] = fresh <= TARGET_FRESH
    figures["meets_noop"] = noop <= TARGET_NOOP
    for kind in ("fresh", "noop"):
        # The database host's deploy and the gateway's, run after each other.
        pairs = [
            a.seconds + b.seconds
            for a, b in zip(
                [r for r in runs if r.tool == "pgfortress" and r.kind == kind],
                [r for r in runs if r.tool == "gateway" and r.kind == kind],
                strict=True,
            )
        ]
        with_gateway = statistics.median(pairs)
        ratio = with_gateway / figures[f"ansible_{kind}"]["median_s"]
        target = TARGET_FRESH if kind == "fresh" else TARGET_NOOP
        figures[f"with_gateway_{kind}"] = {
            "median_s": with_gateway,
            "min_s": min(pairs),
            "max_s": max(pairs),
            "runs": len(pairs),
            "ratio": ratio,
            "meets": ratio <= target,
        }
    for tool in ("pgfortress", "gateway", "ansible"):
        figures[f"{tool}_noop_changes"] = sum(
            r.changed for r in runs if r.tool == tool and r.kind == "noop"
        )
    return figures


def environment(rounds: int, noops: int, version: str) -> dict[str, Any]:
    return {
        **run_context(),
        "load_before": os.getloadavg()[0],
        "lab": LAB,
        "rounds": rounds,
        "noops_per_round": noops,
        "ansible": version,
        "command": COMMAND,
    }


# --- docs/benchmarks.md ------------------------------------------------------

START = "<!-- deploy_vs_ansible: written by bench/deploy_vs_ansible.py -->"
END = "<!-- /deploy_vs_ansible -->"


def _row(label: str, figures: dict[str, Any]) -> str:
    changed = "/".join(str(c) for c in figures["changed"])
    return (
        f"| {label} | {figures['median_s']:.1f} | {figures['min_s']:.1f} to "
        f"{figures['max_s']:.1f} | {figures['runs']} | {changed} |"
    )


def round_trips_text(trips: dict[str, Any] | None) -> str:
    """Where a no-op pgfortress run spends its round trips, as a paragraph."""
    if not trips:
        return ""
    parts = []
    for script in ("deploys/site.py", "deploys/gateway.py"):
        found = trips[script]
        facts = ", ".join(
            f"{name} {count}"
            for name, count in list(found["facts_by_class"].items())[:4]
        )
        parts.append(
            f"`{script}` {found['ssh_commands']} SSH commands in "
            f"{found['seconds']:.1f} s ({found['while_preparing']} while preparing, "
            f"{found['while_running']} while running; most loaded facts: {facts})"
        )
    modules = trips.get("ansible site.yml module runs")
    gateway = trips["deploys/gateway.py"]
    per_file = sum(
        count
        for name, count in gateway["facts_by_class"].items()
        if name in {"files.File", "files.Directory", "files.Sha1File"}
    )
    return (
        "Round trips of one no-op run with `--debug`, after the last round: "
        + "; ".join(parts)
        + f". Ansible's no-op run executed {modules} modules (one per loop item).\n\n"
        + f"Of the gateway deploy's loaded facts, {per_file} are pyinfra's "
        "files.File, files.Directory and files.Sha1File of its directories, "
        "configuration and unit: each file operation reads them while preparing "
        "and again while running. The wheelhouse is read in one fact (every "
        "wheel's digest and mode) and what differs goes up as one archive "
        "(roles/gateway.py `_install`)."
    )


def per_round(runs: list[dict[str, Any]], tool: str, kind: str) -> str:
    return ", ".join(
        f"{r['seconds']:.1f}" for r in runs if r["tool"] == tool and r["kind"] == kind
    )


def section(results: dict[str, Any]) -> str:
    env, fig, runs = results["environment"], results["summary"], results["runs"]
    rows = [
        "| run | median s | range s | runs | changes reported |",
        "|---|---|---|---|---|",
        _row("pgfortress, fresh db host", fig["pgfortress_fresh"]),
        _row("Ansible, fresh db host", fig["ansible_fresh"]),
        _row("pgfortress, fresh gateway host", fig["gateway_fresh"]),
        _row("pgfortress, no-op re-run of the db host", fig["pgfortress_noop"]),
        _row("Ansible, no-op re-run of the db host", fig["ansible_noop"]),
        _row("pgfortress, no-op re-run of the gateway host", fig["gateway_noop"]),
    ]
    gw_fresh, gw_noop = fig["with_gateway_fresh"], fig["with_gateway_noop"]
    verdict = {True: "met", False: "**missed**"}
    comparison = results["comparison"]
    if comparison is None:
        alike = "The hosts were not compared in this run."
    elif not comparison["differences"]:
        alike = (
            "After the first round the two hosts were compared and found alike "
            f"in every aspect looked at: {', '.join(comparison['aspects'])}."
        )
    else:
        alike = (
            "After the first round the two hosts differed in: "
            f"{', '.join(sorted(comparison['differences']))} (rows in the JSON file)."
        )
    trips_text = round_trips_text(results.get("round_trips"))
    seconds = {
        (tool, kind): per_round(runs, tool, kind)
        for tool in ("pgfortress", "gateway", "ansible")
        for kind in ("fresh", "noop")
    }
    return f"""{START}
## Deploy cost: pgfortress against an equivalent Ansible playbook

Repeat (as root, from the repository; about {results["minutes"]:.0f} minutes):

    {env["command"]}

Run {env["date"]} at `{env["commit"]}` on {env["machine"]}.
Load average at the start: {env["load_before"]:.1f} (colleagues' labs ran
too, so the figures are noisy). {env["rounds"]} rounds, each on a freshly
booted lab `{env["lab"]}` of three hosts (db1 and db2 twins, gw1 for the
gateway), with {env["noops_per_round"]} no-op re-runs of each deploy per
round, interleaved; the order of the tools swaps every round. Ansible:
{env["ansible"]}.

{chr(10).join(rows)}

- **Fresh host: pgfortress / Ansible = {fig["ratio_fresh"]:.2f}**
  (target ≤ {TARGET_FRESH}: {verdict[fig["meets_fresh"]]}).
- **No-op re-run: pgfortress / Ansible = {fig["ratio_noop"]:.2f}**
  (target ≤ {TARGET_NOOP}: {verdict[fig["meets_noop"]]}).
- With the gateway host added to pgfortress's side only (db host, then
  gateway host; medians of the sums): fresh {gw_fresh["median_s"]:.1f} s,
  **{gw_fresh["ratio"]:.2f}** of Ansible's db host
  ({verdict[gw_fresh["meets"]]}); no-op {gw_noop["median_s"]:.1f} s,
  **{gw_noop["ratio"]:.2f}** ({verdict[gw_noop["meets"]]}).
- Changes reported over all no-op runs: pgfortress's db host
  {fig["pgfortress_noop_changes"]}, its gateway host
  {fig["gateway_noop_changes"]}, Ansible {fig["ansible_noop_changes"]}.
- Every run, in seconds, round after round: pgfortress fresh
  {seconds["pgfortress", "fresh"]}; Ansible fresh {seconds["ansible", "fresh"]};
  pgfortress no-op {seconds["pgfortress", "noop"]}; Ansible no-op
  {seconds["ansible", "noop"]}; gateway fresh {seconds["gateway", "fresh"]};
  gateway no-op {seconds["gateway", "noop"]}.

{trips_text}

"Changes reported" counts pyinfra operations that changed something, and
Ansible tasks with changed=true (a loop task counts once).

What each side does on a db host: PostgreSQL 15 from Debian, the socket group,
the hardened settings drop-in (listen addresses, socket directory, group and
mode, TLS files and ciphers, logging), pg_hba.conf from the lab inventory's
policy, the server key and certificate issued by pgfortress's CA on this
machine with the same owners and modes, the CA in the system trust store, the
probe database role, then the database roles, memberships, databases, schemas,
grants and default privileges of `specs/lab.yml`, passwords sent only as SCRAM
verifiers. pgfortress runs `deploys/site.py --limit db1` (and, timed apart,
`deploys/gateway.py --limit gw1`, which the playbook has no counterpart for).
Ansible runs
`bench/ansible/site.yml`, written for this comparison with ansible-core and
community.postgresql modules (pipelining and a persistent SSH connection on,
facts limited to the network subset). {alike}

Where the two still differ in the work done: pgfortress stages the files as
candidates, has PostgreSQL check them, restarts only for a setting that needs
it, verifies and rolls back on failure; the playbook restarts on any settings
or TLS change and reloads for pg_hba.conf, then checks the socket and the TLS
certificate when something changed, with no rollback. The playbook also
installs python3-psycopg2, which its modules need on the host, and needs two
tasks (read, then `ALTER DEFAULT PRIVILEGES` by hand) to revoke EXECUTE on
future functions from PUBLIC: `postgresql_privs` sees no such grant in
`pg_default_acl` (it is implicit) and reports "ok" without revoking it. The
time of a fresh host includes the apt install through the lab's caching
proxy, whose cache outlives the lab.
{END}
"""


def write_doc(results: dict[str, Any]) -> None:
    """Replace only this script's section; read the file right before writing."""
    DOC.write_text(replace_section(DOC.read_text(), START, END, section(results)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh labs (default 3)")
    parser.add_argument("--noops", type=int, default=3, help="no-op re-runs per round")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab needs root: run it with sudo")
    playbook = ensure_ansible()
    version = ansible_version(playbook)
    env = environment(args.rounds, args.noops, version)
    started = time.monotonic()
    runs: list[Run] = []
    comparison: dict[str, Any] | None = None
    trips: dict[str, Any] | None = None
    try:
        for number in range(args.rounds):
            last = number == args.rounds - 1
            found, compared, profiled = one_round(number, playbook, args.noops, last)
            runs += found
            comparison = comparison or compared
            trips = trips or profiled
    finally:
        say(f"taking lab {LAB} down")
        labs.down(LAB)
    results: dict[str, Any] = {
        "environment": env,
        "summary": summarise(runs),
        "comparison": comparison,
        "round_trips": trips,
        "runs": [r.as_dict() for r in runs],
        "minutes": (time.monotonic() - started) / 60,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_doc(results)
    print(json.dumps(results["summary"], indent=2))
    fig = results["summary"]
    say(
        f"pgfortress/Ansible: fresh {fig['ratio_fresh']:.2f}, "
        f"no-op {fig['ratio_noop']:.2f}; wrote {RESULTS} and {DOC}"
    )
    verdicts = [fig["meets_fresh"], fig["meets_noop"]]
    verdicts += [fig["with_gateway_fresh"]["meets"], fig["with_gateway_noop"]["meets"]]
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
