"""pg_hba.conf rendering: order, columns, and the closing rejects."""

from __future__ import annotations

from typing import Any

import pytest

from pgfortress.plan import render_hba
from pgfortress.plan.hba import hba_lines
from pgfortress.spec import HbaRule


def rules(*specs: dict[str, Any]) -> list[HbaRule]:
    return [HbaRule.model_validate(spec) for spec in specs]


def live_lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and line[0] != "#"]


def test_empty_policy_admits_only_the_local_admin() -> None:
    lines = live_lines(render_hba([]))
    assert lines[0] == ["local", "all", "postgres", "peer"]
    assert all(line[-1] == "reject" for line in lines[1:])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"databases": "app", "users": "app_rw", "address": "10.0.0.0/24"},
            ["hostssl", "app", "app_rw", "10.0.0.0/24", "scram-sha-256"],
        ),
        (
            {
                "databases": ["a", "b"],
                "users": ["+readers"],
                "address": "2001:db8::/64",
            },
            ["hostssl", "a,b", "+readers", "2001:db8::/64", "scram-sha-256"],
        ),
        (
            {
                "databases": "app",
                "users": "ops",
                "address": "192.0.2.7/32",
                "method": "cert",
                "options": {"clientcert": "verify-full", "map": "ops"},
            },
            [
                "hostssl",
                "app",
                "ops",
                "192.0.2.7/32",
                "cert",
                "clientcert=verify-full",
                "map=ops",
            ],
        ),
        (
            {"type": "local", "databases": "app", "users": "app_rw"},
            ["local", "app", "app_rw", "scram-sha-256"],
        ),
        (
            {
                "type": "host",
                "databases": "all",
                "users": "all",
                "address": "10.9.0.0/16",
                "method": "reject",
            },
            ["host", "all", "all", "10.9.0.0/16", "reject"],
        ),
    ],
)
def test_each_rule_becomes_one_line_after_the_admin_lines(
    spec: dict[str, Any], expected: list[str]
) -> None:
    assert live_lines(render_hba(rules(spec)))[3] == expected


def test_policy_order_is_kept() -> None:
    text = render_hba(
        rules(
            {"databases": "a", "users": "u1", "address": "10.0.1.0/24"},
            {"databases": "b", "users": "u2", "address": "10.0.2.0/24"},
        )
    )
    users = [line[2] for line in live_lines(text)[3:5]]
    assert users == ["u1", "u2"]


def test_everything_else_is_rejected_over_ipv4_ipv6_and_socket() -> None:
    tail = live_lines(render_hba([]))[-5:]
    assert ["local", "all", "all", "reject"] in tail
    assert ["host", "all", "all", "0.0.0.0/0", "reject"] in tail
    assert ["host", "all", "all", "::/0", "reject"] in tail
    assert ["host", "replication", "all", "::/0", "reject"] in tail


def test_no_accepting_tcp_line_ever_uses_a_weak_method() -> None:
    text = render_hba(rules({"databases": "all", "users": "all", "address": "::/0"}))
    for line in live_lines(text):
        if line[0] != "local":
            assert line[4] in {"scram-sha-256", "cert", "reject"}


def test_comments_are_written_above_their_rule() -> None:
    text = render_hba(
        rules(
            {"databases": "a", "users": "u", "address": "10.0.0.0/8", "comment": "vpn"}
        )
    )
    lines = text.splitlines()
    index = lines.index("# vpn")
    assert lines[index + 1].startswith("hostssl")


def test_superuser_is_refused_over_tcp_before_any_policy_rule() -> None:
    policy = rules({"databases": "all", "users": "all", "address": "10.0.0.0/8"})
    lines = live_lines(render_hba(policy))
    assert lines[1] == ["host", "all", "postgres", "0.0.0.0/0", "reject"]
    assert lines[2] == ["host", "all", "postgres", "::/0", "reject"]
    assert lines[3][0] == "hostssl"


def test_admin_user_can_be_renamed() -> None:
    assert hba_lines([], admin_user="dba")[0].user == "dba"


def test_rendering_is_deterministic() -> None:
    policy = rules({"databases": "a", "users": "u", "address": "10.0.0.0/8"})
    assert render_hba(policy) == render_hba(policy)
