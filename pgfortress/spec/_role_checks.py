"""Checks of roles that need the whole spec: names, references, cycles, the API.

Each check yields ``(key path, problem and fix)``; the loader turns the path
into a line of the file.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._yaml import KeyPath

if TYPE_CHECKING:
    from .database_roles import DatabaseRolesSpec

__all__ = ["Problem", "membership_edges", "role_problems", "unknown_role"]

Problem = tuple[KeyPath, str]

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SETTING_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")
# PostgreSQL refuses these as role names, or gives them a meaning of its own.
_RESERVED_ROLES = {"public", "none", "current_role", "current_user", "session_user"}
_SERVER_WIDE = (
    "is a server-wide setting, not one a role can carry; set it with "
    "postgres_settings in the inventory"
)
_SERVER_SETTINGS = (
    "listen_addresses",
    "port",
    "max_connections",
    "shared_buffers",
    "shared_preload_libraries",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "wal_level",
    "archive_command",
)
_FORBIDDEN_SETTINGS = dict.fromkeys(_SERVER_SETTINGS, _SERVER_WIDE) | {
    "role": "is the role itself; use member_of with set: true and SET ROLE",
    "session_authorization": "would switch identity at login; remove it",
    "session_replication_role": (
        "would let the role skip triggers and foreign key checks; remove it"
    ),
    "password_encryption": (
        "would let the role store weaker passwords; pgfortress keeps every "
        "password as a SCRAM-SHA-256 verifier"
    ),
    "session_preload_libraries": "loads server code at login; remove it",
    "local_preload_libraries": "loads server code at login; remove it",
}
_FORBIDDEN_PREFIXES = {
    "log_": (
        "would change what the audit log records for this role; logging is the "
        "same for every role (postgres_logging in the inventory)"
    ),
    "ssl": _SERVER_WIDE,
}


def role_problems(spec: DatabaseRolesSpec) -> list[Problem]:
    """Every problem with roles, memberships and the api, in file order."""
    checks = (_names, _passwords, _settings, _memberships, _cycles, _api)
    return [problem for check in checks for problem in check(spec)]


def membership_edges(spec: DatabaseRolesSpec) -> dict[str, list[str]]:
    """member → the roles it belongs to, including what the api implies."""
    edges = {name: [m.role for m in r.member_of] for name, r in spec.roles.items()}
    if spec.api is not None:
        implied = [spec.api.anonymous, *spec.api.roles]
        edges.setdefault(spec.api.authenticator, []).extend(implied)
    return edges


def unknown_role(name: str, spec: DatabaseRolesSpec) -> str:
    close = difflib.get_close_matches(name, list(spec.roles), n=2)
    hint = f" or use one of {', '.join(sorted(close))}" if close else ""
    return f"unknown role {name!r}; declare it under roles:{hint}"


def _names(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    for name in spec.roles:
        if name.lower() in _RESERVED_ROLES or name.startswith("pg_"):
            why = (
                f"{name!r} is reserved by PostgreSQL (public, none, current_user, "
                "session_user and names starting with pg_); choose another name"
            )
        elif name == "postgres" or name.startswith("pgfortress_"):
            why = (
                f"{name!r} is left to pgfortress itself (the bootstrap superuser "
                "and the pgfortress_ roles it keeps); choose another name"
            )
        elif not ROLE_NAME.fullmatch(name):
            why = (
                f"{name!r} is not a plain role name; use lower-case letters, "
                "digits and _, starting with a letter or _, at most 63 characters"
            )
        else:
            continue
        yield ("roles", name), why


def _passwords(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    for name, role in spec.roles.items():
        if role.password is not None and not role.login:
            why = (
                "this role cannot log in (login: false), so a password would only "
                "be a secret to leak; remove it or set login: true"
            )
            yield ("roles", name, "password"), why


def _settings(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    for name, role in spec.roles.items():
        for setting, value in role.settings.items():
            path: KeyPath = ("roles", name, "settings", setting)
            why = _setting_problem(setting)
            if why is not None:
                yield path, why
            elif isinstance(value, str) and ("\n" in value or "\0" in value):
                yield path, "the value must be a single line of text"


def _setting_problem(name: str) -> str | None:
    if not SETTING_NAME.fullmatch(name):
        return (
            f"{name!r} is not a setting name; use lower-case letters, digits and _ "
            "(an extension's setting is written prefix.name)"
        )
    reason = _FORBIDDEN_SETTINGS.get(name)
    for prefix, why in _FORBIDDEN_PREFIXES.items():
        if reason is None and name.startswith(prefix):
            reason = why
    return None if reason is None else f"{name} must not be set per role: it {reason}"


def _memberships(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    api = spec.api
    implied = set() if api is None else {api.anonymous, *api.roles}
    for name, role in spec.roles.items():
        seen: set[str] = set()
        for index, entry in enumerate(role.member_of):
            path: KeyPath = ("roles", name, "member_of", index)
            if entry.role not in spec.roles:
                yield path, unknown_role(entry.role, spec)
            elif entry.role in seen:
                yield path, f"{entry.role} is listed twice; keep one entry"
            elif api and name == api.authenticator and entry.role in implied:
                why = (
                    f"api: already makes {name} a member of {entry.role} (with "
                    "inherit false, set true); remove this entry"
                )
                yield path, why
            seen.add(entry.role)


def _cycles(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    edges = membership_edges(spec)
    reported: set[frozenset[str]] = set()
    for start in spec.roles:
        cycle = _cycle_from(start, edges)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        path = _written_edge(spec, cycle)
        why = (
            f"membership cycle {' → '.join(cycle)}; a role cannot contain itself, "
            "remove one of these memberships"
        )
        yield path, why


def _written_edge(spec: DatabaseRolesSpec, cycle: list[str]) -> KeyPath:
    """Where the cycle is written: a member_of entry in it (the api's are not)."""
    for member, role in itertools.pairwise(cycle):
        for index, entry in enumerate(spec.roles[member].member_of):
            if entry.role == role:
                return ("roles", member, "member_of", index)
    return ("api",)


def _cycle_from(start: str, edges: dict[str, list[str]]) -> list[str] | None:
    # Depth-first search for a path that leads back to start.
    trail = [start]

    def walk(name: str) -> list[str] | None:
        for parent in edges.get(name, []):
            if parent == start:
                return [*trail, start]
            if parent in trail:
                continue
            trail.append(parent)
            found = walk(parent)
            if found:
                return found
            trail.pop()
        return None

    return walk(start)


def _api(spec: DatabaseRolesSpec) -> Iterator[Problem]:
    api = spec.api
    if api is None:
        return
    auth = spec.roles.get(api.authenticator)
    if auth is None:
        yield ("api", "authenticator"), unknown_role(api.authenticator, spec)
    elif not auth.login or auth.inherit:
        why = (
            f"{api.authenticator} must be login: true and inherit: false, so it "
            "can connect but holds no privileges until it switches role; set "
            f"both under roles.{api.authenticator}"
        )
        yield ("api", "authenticator"), why
    named: list[tuple[KeyPath, str]] = [(("api", "anonymous"), api.anonymous)]
    named += [(("api", "roles", i), role) for i, role in enumerate(api.roles)]
    for path, role_name in named:
        role = spec.roles.get(role_name)
        if role is None:
            yield path, unknown_role(role_name, spec)
        elif role_name == api.authenticator:
            yield path, "the authenticator cannot switch to itself; name another role"
        elif role.login:
            why = (
                f"{role_name} is reached through the authenticator and must not "
                f"log in directly; set login: false under roles.{role_name}"
            )
            yield path, why
