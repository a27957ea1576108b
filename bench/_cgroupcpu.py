"""Where the machine's CPU goes during a timed run, by lab host and unit.

Every lab host runs in a cgroup of its own (``pgfortress-lab/<machine>`` in
the cgroup2 tree, see pgfortress/lab/cgroups.py), and inside it the host's
systemd keeps one cgroup per unit under ``payload/system.slice`` (SSH
sessions, where wrk and pgbench run, under ``payload/user.slice``). Each one
has a ``cpu.stat`` whose ``usage_usec`` only grows: two readings around a run,
subtracted, say how much CPU each part used. The tree's root adds the rest of
the machine (its kernel threads, the control machine's own processes and
anything else running on it at the time).

Reading is :func:`read_usage`; the rest are pure functions on its result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "MACHINE",
    "Usage",
    "breakdown",
    "delta",
    "per_request_us",
    "read_usage",
    "usage_usec",
]

MACHINE = "machine"  # the key of the whole machine's usage in a reading
Usage = dict[str, int]  # "host" or "host/unit" (or MACHINE) -> usage_usec


def usage_usec(cpu_stat: str) -> int:
    """``usage_usec`` from the text of a cgroup2 ``cpu.stat`` file."""
    for line in cpu_stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value)
    raise ValueError("cpu.stat without usage_usec")


def _read(path: Path) -> int | None:
    try:
        return usage_usec((path / "cpu.stat").read_text())
    except (OSError, ValueError):
        return None  # a unit that ended between listing and reading


def read_usage(root: Path, machines: Mapping[str, Path]) -> Usage:
    """One reading: the machine's root, each host and each of its units.

    ``root`` is the cgroup2 mount point; ``machines`` maps a host name to its
    cgroup directory there.
    """
    usage: Usage = {}
    total = _read(root)
    if total is not None:
        usage[MACHINE] = total
    for host, group in machines.items():
        value = _read(group)
        if value is None:
            continue
        usage[host] = value
        payload = group / "payload"
        services = payload / "system.slice"
        children = sorted(services.iterdir()) if services.is_dir() else []
        for child in [*children, payload / "user.slice"]:
            if child.is_dir() and (unit := _read(child)) is not None:
                usage[f"{host}/{child.name}"] = unit
    return usage


def delta(before: Usage, after: Usage) -> Usage:
    """CPU used between two readings, for every key present in both."""
    return {key: after[key] - before[key] for key in after if key in before}


def _unit_of(key: str, units: Mapping[str, str]) -> str | None:
    for prefix, label in units.items():
        if key.startswith(prefix):
            return label
    return None


def breakdown(
    used: Usage, hosts: Iterable[str], units: Mapping[str, Mapping[str, str]]
) -> dict[str, int]:
    """``used`` (a :func:`delta`) in named parts that add up to the machine.

    ``units`` maps a host to ``{unit-name prefix: label}`` for the units worth
    their own line (``{"gw1": {"pgfortress-gateway": "gw1 gateway"}}``); what
    else a host used is "<host> other", and what no lab host used is "rest of
    the machine".
    """
    parts: dict[str, int] = {}
    lab_total = 0
    for host in hosts:
        total = used.get(host, 0)
        lab_total += total
        named = 0
        wanted = units.get(host, {})
        for key, value in sorted(used.items()):
            if not key.startswith(f"{host}/"):
                continue
            label = _unit_of(key.split("/", 1)[1], wanted)
            if label is not None:
                parts[label] = parts.get(label, 0) + value
                named += value
        parts[f"{host} other"] = total - named
    parts["rest of the machine"] = used.get(MACHINE, lab_total) - lab_total
    parts["whole machine"] = used.get(MACHINE, lab_total)
    return parts


def per_request_us(parts: Mapping[str, int], requests: int) -> dict[str, float]:
    """Each part in microseconds of CPU per request (or transaction)."""
    if requests <= 0:
        raise ValueError("no requests to divide the CPU by")
    return {label: round(value / requests, 1) for label, value in parts.items()}
