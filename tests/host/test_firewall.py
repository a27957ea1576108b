"""The live state of the nftables host firewall (roles/firewall.py).

A host is expected to run the pgfortress firewall when the inventory
(``--pgf-inventory``) gives it ``firewall_admin_networks``; without an
inventory, when a pgfortress run ever confirmed one there (its record,
/var/lib/pgfortress/firewall.applied, exists). Either way each check asserts
something: a firewall that should be there must be whole, and a host that
should have none must have no leftovers of one.

No ``pytest.mark.control`` here: neither the CIS PostgreSQL Benchmark nor
dev-sec's postgres-baseline has a recommendation about a host firewall (they
check listen_addresses and pg_hba.conf, which tests/host/test_postgres_server.py
covers).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pgfortress.plan.firewall import CONF_FILE, INCLUDE_LINE, RULES_FILE, firewall_rules
from pgfortress.plan.firewall_apply import STATE_FILE
from pgfortress.spec.firewall import FirewallHostSpec, firewall_from_host_data

TABLE = "inet pgfortress"
DIGEST = f"nft -s list table {TABLE} | sha256sum | cut -d ' ' -f 1"


@pytest.fixture
def policy(host: Any, inventory: dict[str, dict[str, Any]]) -> FirewallHostSpec | None:
    """The host's firewall policy from the inventory, or None if it has none."""
    name = host.backend.get_hostname()
    data = inventory.get(name, {})
    if "firewall_admin_networks" not in data:
        return None
    return firewall_from_host_data(name, data, _redis_clients(inventory, data))


@pytest.fixture
def expected(host: Any, inventory: dict[str, Any], policy: Any) -> bool:
    """Whether the host should run the pgfortress firewall."""
    if inventory:
        return policy is not None
    return bool(host.file(STATE_FILE).exists)


def _redis_clients(
    inventory: dict[str, dict[str, Any]], data: dict[str, Any]
) -> list[str]:
    address = data.get("redis_listen")
    return [
        str(other["gateway_listen"])
        for other in inventory.values()
        if address is not None
        and (other.get("gateway_limits") or {}).get("redis_host") == address
        and other.get("gateway_listen")
    ]


def _table(host: Any) -> dict[str, Any] | None:
    result = host.run(f"nft -j list table {TABLE}")
    if result.rc != 0:
        return None
    items = json.loads(result.stdout)["nftables"]
    return {"chains": [i["chain"] for i in items if "chain" in i]}


def test_the_firewall_drops_what_the_policy_does_not_name(
    host: Any, expected: bool, policy: FirewallHostSpec | None
) -> None:
    table = _table(host)
    if not expected:
        assert table is None, f"table {TABLE} runs, but no firewall is wanted here"
        return
    assert table is not None, f"table {TABLE} is not loaded"
    (chain,) = table["chains"]
    assert (chain["name"], chain["hook"], chain["policy"]) == (
        "input",
        "input",
        "drop",
    )
    if policy is None:
        return
    listing = host.check_output(f"nft -s list table {TABLE}")
    opened = set(
        re.findall(r"(ip6?) saddr (.+?) (tcp|udp) dport (\d+) accept", listing)
    )
    wanted = set()
    for rule in firewall_rules(policy):
        for family, networks in rule.sources:
            text = (
                networks[0] if len(networks) == 1 else "{ " + ", ".join(networks) + " }"
            )
            wanted.add((family, text, rule.protocol, str(rule.port)))
    # The DHCPv6 client port is the one fixed rule with a source network.
    opened.discard(("ip6", "fe80::/10", "udp", "546"))
    assert opened == wanted


def test_the_firewall_comes_back_at_boot(host: Any, expected: bool) -> None:
    conf = host.file(CONF_FILE)
    included = conf.exists and INCLUDE_LINE in conf.content_string.splitlines()
    if not expected:
        assert not included, f"{CONF_FILE} includes {RULES_FILE}, unwanted here"
        return
    assert included
    assert host.service("nftables").is_enabled
    rules = host.file(RULES_FILE)
    assert (rules.user, rules.group, rules.mode) == ("root", "root", 0o644)
    # What the service loads at boot (and on restart) is accepted by nft.
    assert host.run(f"nft -c -f {CONF_FILE}").rc == 0


def test_the_running_firewall_is_the_one_last_confirmed(
    host: Any, expected: bool
) -> None:
    record = host.file(STATE_FILE)
    if not expected:
        assert not record.exists, f"{STATE_FILE} records a firewall unwanted here"
        return
    assert record.exists, "no confirmed pgfortress firewall on this host"
    assert host.check_output(DIGEST) == record.content_string.strip()
