"""Firewall plan: rules from the spec, the nft text, the lock-out guard, the apply."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from pgfortress.plan.firewall import (
    INCLUDE_LINE,
    RULES_FILE,
    firewall_rules,
    lockout_problem,
    render_nftables,
)
from pgfortress.plan.firewall_apply import (
    FirewallState,
    firewall_script,
    firewall_state_command,
    parse_firewall_state,
    reasons_to_apply,
)
from pgfortress.spec.firewall import FirewallHostSpec, firewall_from_host_data

ADMIN = ["10.213.6.1/32", "fd70:6766:213:6::1/128"]


def spec_of(**data: Any) -> FirewallHostSpec:
    return firewall_from_host_data("db1", {"firewall_admin_networks": ADMIN, **data})


DB = spec_of(
    postgres_listen=["eth0"],
    postgres_hba=[
        {"databases": "app", "users": "all", "address": "10.213.6.11/32"},
        {"databases": "app", "users": "all", "address": "10.213.6.1/32"},
        {"databases": "app", "users": "all", "address": "fd70:6766:213:6::11/128"},
    ],
)


def test_rules_ssh_first_then_services_networks_merged_per_family() -> None:
    rules = firewall_rules(DB)
    assert [(r.name, r.port) for r in rules] == [("ssh", 22), ("postgres", 5432)]
    ssh, postgres = rules
    assert ssh.sources == [("ip", ["10.213.6.1"]), ("ip6", ["fd70:6766:213:6::1"])]
    # The control machine is both an admin and an hba client: listed once.
    assert postgres.sources == [
        ("ip", ["10.213.6.1", "10.213.6.11"]),
        ("ip6", ["fd70:6766:213:6::1", "fd70:6766:213:6::11"]),
    ]


def test_adjacent_and_nested_networks_are_merged() -> None:
    spec = spec_of(
        firewall_allow=[
            {
                "port": 9100,
                "networks": ["10.0.0.0/25", "10.0.0.128/25", "10.0.0.7/32"],
                "comment": "node exporter",
            }
        ]
    )
    extra = firewall_rules(spec)[-1]
    assert (extra.comment, extra.sources) == (
        "node exporter",
        [("ip", ["10.0.0.0/24"])],
    )


def test_a_family_or_service_without_networks_gets_no_rule() -> None:
    spec = spec_of(redis_listen="10.213.6.30", firewall_redis_networks=[])
    assert [r.name for r in firewall_rules(spec)] == ["ssh"]
    assert "6379" not in render_nftables(spec)


def test_the_ruleset_replaces_only_its_own_table_in_one_file() -> None:
    text = render_nftables(DB)
    lines = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    assert lines[:3] == [
        "table inet pgfortress",
        "delete table inet pgfortress",
        "table inet pgfortress {",
    ]
    assert "flush ruleset" not in text
    assert text.count("table inet") == 3


def test_the_ruleset_drops_by_default_and_allows_only_what_the_policy_names() -> None:
    text = render_nftables(DB)
    assert "type filter hook input priority filter; policy drop;" in text
    for line in (
        'iif "lo" accept',
        "ct state established,related accept",
        "ct state invalid drop",
        "ip saddr { 10.213.6.1 } tcp dport 22 accept",
        "ip6 saddr { fd70:6766:213:6::1 } tcp dport 22 accept",
        "ip saddr { 10.213.6.1, 10.213.6.11 } tcp dport 5432 accept",
        "ip6 saddr { fd70:6766:213:6::1, fd70:6766:213:6::11 } tcp dport 5432 accept",
    ):
        assert f"\t\t{line}\n" in text
    accepts = [line for line in text.splitlines() if line.endswith(" accept")]
    # loopback, established, 3 ICMP lines, DHCPv6, 2 SSH, 2 PostgreSQL
    assert len(accepts) == 10
    # No output or forward chain: the host's own traffic and routing are left alone.
    assert "hook output" not in text
    assert "hook forward" not in text


def test_ipv6_neighbour_discovery_is_allowed_from_the_link_only() -> None:
    text = render_nftables(DB)
    assert (
        "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
        "ip6 hoplimit 255 accept"
    ) in text
    assert "packet-too-big" in text


def test_the_same_spec_renders_the_same_text() -> None:
    assert render_nftables(DB) == render_nftables(spec_of(**_db_data()))


def _db_data() -> dict[str, Any]:
    return {
        "postgres_listen": ["eth0"],
        "postgres_hba": [
            {"databases": "app", "users": "all", "address": "fd70:6766:213:6::11/128"},
            {"databases": "app", "users": "all", "address": "10.213.6.11/32"},
            {"databases": "app", "users": "all", "address": "10.213.6.1/32"},
        ],
    }


@pytest.mark.parametrize(
    ("peer", "port", "problem"),
    [
        ("10.213.6.1", 22, None),
        ("::ffff:10.213.6.1", 22, None),
        ("fd70:6766:213:6::1", 22, None),
        ("10.213.6.5", 22, "firewall_admin_networks: the deploy connects from"),
        ("10.213.6.5", 22, "add 10.213.6.5/32 (or its network)"),
        ("fd70::5", 22, "add fd70::5/128"),
        ("10.213.6.1", 2222, "firewall_ssh_port: the deploy reaches sshd on port"),
        ("10.213.6.1", 2222, "set firewall_ssh_port: 2222"),
        ("nonsense", 22, "cannot tell the deploy's address"),
    ],
)
def test_a_policy_that_shuts_the_deploy_out_is_named(
    peer: str, port: int, problem: str | None
) -> None:
    found = lockout_problem(DB, peer, port)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_the_state_fact_reads_peer_and_firewall() -> None:
    state = parse_firewall_state(
        [
            "peer 10.213.6.1 22 10.213.6.10",
            "nft",
            "live abc",
            "included",
            "enabled",
            "recorded abc",
        ]
    )
    assert state == FirewallState(
        peer="10.213.6.1",
        ssh_port=22,
        server_address="10.213.6.10",
        has_nft=True,
        included=True,
        enabled=True,
        live="abc",
        recorded="abc",
    )
    assert reasons_to_apply(state, staged=False) == []


def test_without_ssh_connection_the_peer_is_unknown() -> None:
    state = parse_firewall_state(["peer none 0 none"])
    assert (state.peer, state.ssh_port, state.server_address) == (None, None, None)
    assert "SSH_CONNECTION" in firewall_state_command()


@pytest.mark.parametrize(
    ("lines", "staged", "reason"),
    [
        (["live a", "recorded a", "included", "enabled"], True, "the ruleset changed"),
        (["recorded a", "included", "enabled"], False, "is not loaded"),
        (["live b", "recorded a", "included", "enabled"], False, "differs from"),
        (["live a", "recorded a", "enabled"], False, f"does not include {RULES_FILE}"),
        (["live a", "recorded a", "included"], False, "is not enabled"),
    ],
)
def test_each_drift_is_a_reason_to_apply(
    lines: list[str], staged: bool, reason: str
) -> None:
    (found,) = reasons_to_apply(parse_firewall_state(lines), staged)
    assert reason in found


@pytest.mark.parametrize("mode", ["load", "confirm", "rollback"])
def test_the_apply_script_carries_its_values_quoted(mode: Any) -> None:
    script = firewall_script("db1", mode, 45)
    assert script.startswith("host=db1\n")
    assert f"mode={mode}\n" in script
    assert "confirm_seconds=45\n" in script
    assert f"include_line='{INCLUDE_LINE}'\n" in script
    assert "table='inet pgfortress'\n" in script
    assert "flock" in script


@pytest.mark.parametrize("mode", ["load", "confirm", "rollback"])
def test_the_apply_script_is_valid_posix_shell(mode: Any) -> None:
    checked = subprocess.run(
        ["sh", "-n"],
        input=firewall_script("db1", mode, 60),
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


def test_a_directory_host_opens_ldap_and_ldaps_to_its_database_hosts() -> None:
    spec = firewall_from_host_data(
        "ldap1",
        {
            "firewall_admin_networks": ["10.213.6.1/32"],
            "ldap_listen": "10.213.6.40",
            "firewall_ldap_networks": ["10.213.6.10/32"],
        },
    )
    rules = firewall_rules(spec)
    assert [(r.name, r.port, r.sources) for r in rules[1:]] == [
        ("ldap", 389, [("ip", ["10.213.6.10"])]),
        ("ldaps", 636, [("ip", ["10.213.6.10"])]),
    ]
    text = render_nftables(spec)
    assert "ip saddr { 10.213.6.10 } tcp dport 636 accept" in text
