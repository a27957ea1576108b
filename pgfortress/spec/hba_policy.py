"""Checks over the whole ordered policy, not one rule at a time.

PostgreSQL uses the first pg_hba rule whose connection type, database, user
and address match; it never tries a later one, even when authentication
fails. So a rule that an earlier one already matches entirely can never be
used, and is refused. Legal but risky rules are only warned about, and each
warning can be acknowledged on the rule itself (``acknowledge``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .hba import HbaRule

__all__ = [
    "ADMIN_USER",
    "WARNING_KINDS",
    "HbaWarning",
    "Shadow",
    "admin_rule_problem",
    "covers",
    "policy_warnings",
    "rule_text",
    "shadowed_rules",
    "unneeded_acknowledgements",
]

ADMIN_USER = "postgres"
# The widest networks an accepting rule may name without a warning.
WIDE_IPV4_PREFIX = 16
WIDE_IPV6_PREFIX = 48
WARNING_KINDS = ("wide-network", "all-all")

# Which connections each rule type matches (pgfortress never renders gss types).
_CONNECTIONS = {
    "local": frozenset({"socket"}),
    "host": frozenset({"tls", "plain"}),
    "hostssl": frozenset({"tls"}),
    "hostnossl": frozenset({"plain"}),
}


@dataclass(frozen=True)
class Shadow:
    """Rule ``later`` can never be used because rule ``earlier`` matches first."""

    earlier: int
    later: int
    duplicate: bool


@dataclass(frozen=True)
class HbaWarning:
    """A legal but risky rule: its position, the kind of risk, and why."""

    position: int
    kind: str
    risk: str


def rule_text(rule: HbaRule) -> str:
    """The rule as it reads in pg_hba.conf, for messages."""
    columns = [rule.type, ",".join(rule.databases), ",".join(rule.users)]
    columns += [str(rule.network)] if rule.network is not None else []
    columns.append(rule.method)
    columns += [f"{k}={v}" for k, v in sorted(rule.options.items())]
    return " ".join(columns)


def _database_covered(name: str, earlier: set[str]) -> bool:
    # `all` matches every database except replication connections.
    return name in earlier or ("all" in earlier and name != "replication")


def _user_covered(name: str, earlier: set[str]) -> bool:
    # `+group` is left alone unless named as such: membership is not known here.
    return name in earlier or "all" in earlier


def _normal(names: Sequence[str]) -> set[str]:
    return {"samerole" if name == "samegroup" else name for name in names}


def covers(earlier: HbaRule, later: HbaRule) -> bool:
    """Whether every connection ``later`` matches is matched by ``earlier``."""
    if not _CONNECTIONS[later.type] <= _CONNECTIONS[earlier.type]:
        return False
    if later.network is not None and earlier.network is not None:
        if later.network.version != earlier.network.version:
            return False
        if not later.network.subnet_of(earlier.network):  # type: ignore[arg-type]
            return False
    databases, users = _normal(earlier.databases), _normal(earlier.users)
    return all(_database_covered(d, databases) for d in _normal(later.databases)) and (
        all(_user_covered(u, users) for u in _normal(later.users))
    )


def _same(one: HbaRule, other: HbaRule) -> bool:
    def key(rule: HbaRule) -> tuple[object, ...]:
        return (
            rule.type,
            frozenset(_normal(rule.databases)),
            frozenset(_normal(rule.users)),
            rule.network,
            rule.method,
            tuple(sorted(rule.options.items())),
        )

    return key(one) == key(other)


def shadowed_rules(rules: Sequence[HbaRule]) -> list[Shadow]:
    """Every rule that an earlier one matches entirely, with the first such rule."""
    found = []
    for later, rule in enumerate(rules):
        for earlier in range(later):
            if covers(rules[earlier], rule):
                found.append(Shadow(earlier, later, _same(rules[earlier], rule)))
                break
    return found


def admin_rule_problem(rule: HbaRule, admin: str = ADMIN_USER) -> str | None:
    """Why a rule naming the administrator can never be used, if it names it.

    pg_hba.conf always starts with ``local all <admin> peer`` and rejects the
    administrator over TCP, so no policy rule can give or take its access.
    """
    if admin not in rule.users:
        return None
    where = (
        f"the first line of pg_hba.conf, local all {admin} peer, always lets "
        f"{admin} in over the socket"
        if rule.type == "local"
        else f"pg_hba.conf rejects {admin} over TCP before any policy rule"
    )
    return (
        f"users: {admin!r} is the administrator and this rule can never apply to "
        f"it: {where}; remove {admin!r} from users"
    )


def _risks(rule: HbaRule) -> list[tuple[str, str]]:
    if rule.method == "reject" or rule.type == "local" or rule.network is None:
        return []
    risks = []
    network = rule.network
    widest = WIDE_IPV4_PREFIX if network.version == 4 else WIDE_IPV6_PREFIX
    if network.prefixlen < widest:
        risks.append(
            (
                "wide-network",
                f"accepts clients from {network} ({network.num_addresses:,} "
                f"addresses, wider than /{widest}); name the clients' networks",
            )
        )
    if "all" in rule.databases and "all" in rule.users:
        risks.append(
            (
                "all-all",
                "accepts every database role for every database over TCP; name "
                "the databases and roles that need it",
            )
        )
    return risks


def policy_warnings(rules: Sequence[HbaRule]) -> list[HbaWarning]:
    """Risky rules that the inventory has not acknowledged, in rule order."""
    return [
        HbaWarning(position, kind, risk)
        for position, rule in enumerate(rules)
        for kind, risk in _risks(rule)
        if kind not in rule.acknowledge
    ]


def unneeded_acknowledgements(rule: HbaRule) -> list[str]:
    """Acknowledged kinds that the rule does not trigger (stale after an edit)."""
    raised = {kind for kind, _ in _risks(rule)}
    return [kind for kind in rule.acknowledge if kind not in raised]
