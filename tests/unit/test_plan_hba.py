"""pg_hba.conf rendering: order, columns, and the closing rejects."""

from __future__ import annotations

from typing import Any

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan import render_hba
from pgfortress.plan.hba import HbaLine, first_match, hba_lines, lockout_problem
from pgfortress.spec import HbaRule, from_host_data
from pgfortress.spec.hba_policy import (
    Shadow,
    covers,
    policy_warnings,
    shadowed_rules,
    unneeded_acknowledgements,
)


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


# --- shadowing: a pure function over the ordered rules -----------------------


def one(**fields: Any) -> HbaRule:
    base = {"databases": "app", "users": "alice", "address": "10.0.0.0/24"}
    return HbaRule.model_validate(base | fields)


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        pytest.param(one(), one(), True, id="same-rule"),
        pytest.param(one(users="all"), one(), True, id="all-users-covers-a-name"),
        pytest.param(one(databases="all"), one(), True, id="all-databases"),
        pytest.param(one(address="10.0.0.0/16"), one(), True, id="wider-network"),
        pytest.param(one(), one(address="10.0.0.0/16"), False, id="narrower-network"),
        pytest.param(one(), one(address="10.0.1.0/24"), False, id="other-network"),
        pytest.param(
            one(address="::/0", method="reject"),
            one(),
            False,
            id="ipv6-never-covers-ipv4",
        ),
        pytest.param(
            one(type="host", method="reject"), one(), True, id="host-covers-hostssl"
        ),
        pytest.param(
            one(),
            one(type="host", method="reject"),
            False,
            id="hostssl-leaves-plaintext-to-host",
        ),
        pytest.param(
            one(type="local", address=None),
            one(),
            False,
            id="socket-and-tcp-never-overlap",
        ),
        pytest.param(
            one(databases="all"),
            one(databases="replication"),
            False,
            id="all-does-not-match-replication",
        ),
        pytest.param(
            one(users="alice"),
            one(users="+readers"),
            False,
            id="group-membership-unknown",
        ),
        pytest.param(
            one(users="+readers"), one(users="+readers"), True, id="same-group"
        ),
        pytest.param(
            one(users="alice"), one(users="alice, bob"), False, id="partly-covered"
        ),
        pytest.param(
            one(databases="samegroup"),
            one(databases="samerole"),
            True,
            id="samegroup-is-samerole",
        ),
    ],
)
def test_covers(earlier: HbaRule, later: HbaRule, expected: bool) -> None:
    assert covers(earlier, later) is expected


def test_shadowed_rules_names_the_first_earlier_rule_and_duplicates() -> None:
    policy = [
        one(address="10.0.0.0/16", method="reject"),
        one(address="10.0.0.0/8", method="reject"),
        one(),
        one(address="10.0.0.0/16", method="reject"),
    ]
    assert shadowed_rules(policy) == [
        Shadow(earlier=0, later=2, duplicate=False),
        Shadow(earlier=0, later=3, duplicate=True),
    ]


def test_a_well_ordered_policy_has_no_shadow() -> None:
    policy = [one(), one(users="all"), one(databases="all", users="all")]
    assert shadowed_rules(policy) == []


# --- warnings and their acknowledgement --------------------------------------


@pytest.mark.parametrize(
    ("rule", "kinds"),
    [
        pytest.param(one(address="10.0.0.0/8"), ["wide-network"], id="ipv4-slash-8"),
        pytest.param(one(address="10.0.0.0/16"), [], id="ipv4-slash-16-is-fine"),
        pytest.param(one(address="2001:db8::/32"), ["wide-network"], id="ipv6-32"),
        pytest.param(one(address="2001:db8::/48"), [], id="ipv6-48-is-fine"),
        pytest.param(
            one(databases="all", users="all"), ["all-all"], id="all-all-accepting"
        ),
        pytest.param(
            one(databases="all", users="all", address="0.0.0.0/0"),
            ["wide-network", "all-all"],
            id="both",
        ),
        pytest.param(
            one(databases="all", users="all", address="0.0.0.0/0", method="reject"),
            [],
            id="rejecting-rules-never-warn",
        ),
        pytest.param(
            one(type="local", databases="all", users="all", address=None),
            [],
            id="socket-rules-never-warn",
        ),
        pytest.param(one(databases="all"), [], id="all-databases-named-users"),
    ],
)
def test_policy_warnings(rule: HbaRule, kinds: list[str]) -> None:
    assert [w.kind for w in policy_warnings([rule])] == kinds


def test_a_warning_names_the_rule_position_and_the_risk() -> None:
    [warning] = policy_warnings([one(), one(users="bob", address="10.0.0.0/8")])
    assert warning.position == 1
    assert "10.0.0.0/8" in warning.risk
    assert "wider than /16" in warning.risk


def test_an_acknowledged_warning_is_not_listed() -> None:
    wide = one(databases="all", users="all", address="10.0.0.0/8")
    acknowledged = one(
        databases="all",
        users="all",
        address="10.0.0.0/8",
        acknowledge=["wide-network"],
    )
    assert [w.kind for w in policy_warnings([wide])] == ["wide-network", "all-all"]
    assert [w.kind for w in policy_warnings([acknowledged])] == ["all-all"]
    assert unneeded_acknowledgements(acknowledged) == []


def test_an_acknowledgement_the_rule_does_not_need_is_reported() -> None:
    assert unneeded_acknowledgements(one(acknowledge=["all-all"])) == ["all-all"]


def test_acknowledge_is_never_rendered() -> None:
    text = render_hba([one(address="10.0.0.0/8", acknowledge=["wide-network"])])
    assert "wide-network" not in text
    assert "acknowledge" not in text


# --- lock-out guard ----------------------------------------------------------

HOSTILE_POLICIES = [
    pytest.param([], id="empty"),
    pytest.param(
        [
            one(
                type="local",
                databases="all",
                users="all",
                address=None,
                method="reject",
            )
        ],
        id="local-all-all-reject",
    ),
    pytest.param(
        [one(type="local", databases="all", users="+admins", address=None)],
        id="local-group-scram",
    ),
    pytest.param(
        [one(databases="all", users="all", address="0.0.0.0/0", method="reject")],
        id="reject-every-network",
    ),
    pytest.param(
        [
            one(type="local", databases="sameuser", users="all", address=None),
            one(databases="all", users="all", address="::/0"),
        ],
        id="sameuser-on-socket-and-all-over-ipv6",
    ),
]


@pytest.mark.parametrize("policy", HOSTILE_POLICIES)
def test_every_policy_keeps_the_admin_peer_line_first(policy: list[HbaRule]) -> None:
    lines = hba_lines(policy)
    assert (lines[0].type, lines[0].database, lines[0].user) == (
        "local",
        "all",
        "postgres",
    )
    assert lines[0].method == "peer"
    assert live_lines(render_hba(policy))[0] == ["local", "all", "postgres", "peer"]
    for database in ("postgres", "template1", "app"):
        assert first_match(lines, database, "postgres") == 0
    assert lockout_problem(lines) is None


@pytest.mark.parametrize("policy", HOSTILE_POLICIES)
def test_the_admin_never_gets_in_over_tcp(policy: list[HbaRule]) -> None:
    lines = hba_lines(policy)
    for address in ("10.0.0.1", "2001:db8::1"):
        index = first_match(lines, "app", "postgres", address)
        assert index is not None
        assert lines[index].method == "reject"


def test_policy_rules_naming_the_admin_are_refused_before_rendering() -> None:
    with pytest.raises(SpecError, match="'postgres' is the administrator"):
        from_host_data(
            "db1",
            {
                "postgres_listen": ["eth0"],
                "postgres_tls": {"ca_dir": "/srv/ca"},
                "postgres_hba": [
                    {
                        "type": "local",
                        "databases": "all",
                        "users": "postgres",
                        "method": "reject",
                    }
                ],
            },
        )


def test_lockout_problem_catches_a_line_placed_before_the_admin_line() -> None:
    # render_hba cannot produce this; a forged line list shows the guard works.
    forged = [HbaLine("local", "all", "all", "", "reject"), *hba_lines([])]
    problem = lockout_problem(forged)
    assert problem is not None
    assert "postgres over the socket to postgres is decided by line 1" in problem
    assert "lock itself out" in problem


def test_lockout_problem_catches_a_missing_admin_line() -> None:
    problem = lockout_problem(hba_lines([])[1:])
    assert problem is not None
    assert "local all postgres peer" in problem
