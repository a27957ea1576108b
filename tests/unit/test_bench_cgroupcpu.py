"""The machine's CPU per request, by lab host and unit, from cgroup readings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import _cgroupcpu as cg
from bench import gateway_vs_pgbench as bench

CPU_STAT = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnice_usec 0\n"


def test_usage_is_read_from_cpu_stat() -> None:
    assert cg.usage_usec(CPU_STAT) == 1500
    with pytest.raises(ValueError, match="usage_usec"):
        cg.usage_usec("user_usec 1\n")


def _group(path: Path, usage: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cpu.stat").write_text(f"usage_usec {usage}\n")
    return path


def test_a_reading_has_the_machine_each_host_its_services_and_ssh(
    tmp_path: Path,
) -> None:
    root = _group(tmp_path, 9000)
    gw1 = _group(tmp_path / "pgfortress-lab" / "pgf-x-gw1", 700)
    services = gw1 / "payload" / "system.slice"
    _group(services / "pgfortress-gateway.service", 500)
    _group(services / "systemd-journald.service", 50)
    _group(gw1 / "payload" / "user.slice", 20)
    (services / "not-a-unit").mkdir()  # no cpu.stat: left out

    usage = cg.read_usage(root, {"gw1": gw1})

    assert usage == {
        cg.MACHINE: 9000,
        "gw1": 700,
        "gw1/pgfortress-gateway.service": 500,
        "gw1/systemd-journald.service": 50,
        "gw1/user.slice": 20,
    }


def test_the_parts_add_up_to_the_whole_machine() -> None:
    before = {cg.MACHINE: 0, "gw1": 0, "gw1/pgfortress-gateway.service": 0, "db1": 0}
    after = {
        cg.MACHINE: 10_000,
        "gw1": 4_000,
        "gw1/pgfortress-gateway.service": 3_000,
        "gw1/systemd-journald.service": 100,  # not in the first reading
        "db1": 2_000,
    }
    used = cg.delta(before, after)
    parts = cg.breakdown(
        used, ["gw1", "db1"], {"gw1": {"pgfortress-gateway": "gateway"}}
    )

    assert parts == {
        "gateway": 3_000,
        "gw1 other": 1_000,
        "db1 other": 2_000,
        "rest of the machine": 4_000,
        "whole machine": 10_000,
    }
    named = sum(v for k, v in parts.items() if k != "whole machine")
    assert named == parts["whole machine"]
    assert cg.per_request_us(parts, 100)["gateway"] == 30.0
    with pytest.raises(ValueError, match="no requests"):
        cg.per_request_us(parts, 0)


def test_the_gateway_benchmark_names_parts_by_role() -> None:
    state = SimpleNamespace(hosts=dict.fromkeys(bench.HOSTS))
    used = {
        cg.MACHINE: 20_000,
        "gw1": 6_000,
        "gw1/pgfortress-gateway.service": 5_000,
        "gw1/systemd-journald.service": 400,
        "db1": 2_000,
        "db1/system-postgresql.slice": 1_800,
        "client1": 900,
        "client1/ssh.service": 800,
        "gw2": 100,
        "cache1": 50,
    }
    parts = bench.machine_per_request(state, used, "gw1", 10)  # type: ignore[arg-type]

    assert parts["serving host: gateway service"] == 500.0
    assert parts["serving host: journald"] == 40.0
    assert parts["serving host: other"] == 60.0
    assert parts["db1: postgres"] == 180.0
    assert parts["client1: SSH sessions (wrk)"] == 80.0
    assert parts["other lab hosts (idle)"] == 15.0
    assert parts["whole machine"] == 2_000.0
    assert set(parts) <= set(bench.PART_ORDER)
