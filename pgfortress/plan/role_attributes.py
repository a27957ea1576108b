"""Roles themselves: creation, attributes, passwords, settings and comments.

Each function covers every role of the spec for one step, so the plan runs the
steps in order (all creations before any attribute change, and so on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from psycopg import sql

from ..catalog import CatalogState, PasswordState, RoleState
from ..scram import digest_matches, make_verifier
from ..secrets import Secret
from ..spec.database_roles import RoleSpec, SettingValue
from ._scope import MANAGED_MARK, Outcome, Scope
from ._statements import MASK, Statement, identifier, integer, statement

__all__ = [
    "alter_attributes",
    "comment_text",
    "create_roles",
    "createrole_reports",
    "role_comments",
    "role_settings",
    "set_passwords",
]

# (attribute, keyword when true, keyword when false), in the order written.
_FLAGS = (
    ("login", "LOGIN", "NOLOGIN"),
    ("inherit", "INHERIT", "NOINHERIT"),
    ("createdb", "CREATEDB", "NOCREATEDB"),
    ("createrole", "CREATEROLE", "NOCREATEROLE"),
    ("superuser", "SUPERUSER", "NOSUPERUSER"),
    ("replication", "REPLICATION", "NOREPLICATION"),
    ("bypassrls", "BYPASSRLS", "NOBYPASSRLS"),
)
# From 16 on, CREATEROLE covers only the roles held WITH ADMIN OPTION.
_CREATEROLE_SCOPED_SINCE = 16
# Settings whose value is a list the server stores with identifier quoting.
_LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces"})
_ELEMENT = re.compile(r'"((?:[^"]|"")*)"|([^,]+)')


def create_roles(scope: Scope, cluster: CatalogState) -> Outcome:
    """CREATE ROLE for each missing role, with the attributes it needs."""
    out = Outcome()
    for name, role in scope.spec.roles.items():
        if name not in cluster.roles:
            options = _options(RoleState(name), role)
            query = sql.SQL("CREATE ROLE {}").format(identifier(name))
            if options:
                query = sql.SQL("{} WITH {}").format(query, options)
            out.statements.append(statement(None, query))
    return out


def alter_attributes(scope: Scope, cluster: CatalogState) -> Outcome:
    """ALTER ROLE for the attributes of existing roles that differ, both ways."""
    out = Outcome()
    for name, role in scope.spec.roles.items():
        current = cluster.roles.get(name)
        options = _options(current, role) if current else None
        if options:
            query = sql.SQL("ALTER ROLE {} WITH {}").format(identifier(name), options)
            out.statements.append(statement(None, query))
    return out


def set_passwords(
    scope: Scope, cluster: CatalogState, passwords: Mapping[str, Secret]
) -> Outcome:
    """Set a SCRAM verifier where the stored one was not made from the password."""
    out = Outcome()
    for name, role in scope.spec.roles.items():
        current = cluster.roles.get(name)
        stored = current.password if current else None
        if not role.login:
            if stored is not None:
                # A role that cannot log in has no use for a password.
                query = sql.SQL("ALTER ROLE {} PASSWORD NULL").format(identifier(name))
                out.statements.append(statement(None, query))
            continue
        secret = passwords.get(name)
        if secret is None:
            out.reports.append(
                f"no password was given for login role {name}; its password is "
                "left as it is"
            )
        elif stored is None or not _matches(stored, secret):
            out.statements.append(_password_statement(name, secret))
            if stored is not None and stored.kind == "md5":
                out.reports.append(
                    f"role {name} had an md5 password hash; it is replaced by a "
                    "SCRAM-SHA-256 verifier of the same password"
                )
    return out


def role_settings(scope: Scope, cluster: CatalogState) -> Outcome:
    """ALTER ROLE ... SET for settings that differ, RESET for those not in the spec."""
    out = Outcome()
    for name, role in scope.spec.roles.items():
        current = cluster.roles.get(name)
        stored = current.settings if current else {}
        for setting, value in role.settings.items():
            if setting in stored and _same(setting, stored[setting], value):
                continue
            query = sql.SQL("ALTER ROLE {} SET {} = {}").format(
                identifier(name), _setting_name(setting), _setting_value(setting, value)
            )
            out.statements.append(statement(None, query))
        for setting in sorted(set(stored) - set(role.settings)):
            query = sql.SQL("ALTER ROLE {} RESET {}").format(
                identifier(name), _setting_name(setting)
            )
            out.statements.append(statement(None, query))
    return out


def role_comments(scope: Scope, cluster: CatalogState) -> Outcome:
    """COMMENT ON ROLE, marking each role as pgfortress's for later runs."""
    out = Outcome()
    for name, role in scope.spec.roles.items():
        current = cluster.roles.get(name)
        wanted = comment_text(role)
        if current is None or current.comment != wanted:
            query = sql.SQL("COMMENT ON ROLE {} IS {}").format(
                identifier(name), sql.Literal(wanted)
            )
            out.statements.append(statement(None, query))
    return out


def createrole_reports(scope: Scope) -> list[str]:
    """What CREATEROLE lets a spec role do where that is more than it looks.

    Before PostgreSQL 16, CREATEROLE covers every database role that is not a
    superuser, which includes granting the pg_ roles that read or write the
    server's files and run programs; from 16 on only the roles it holds ADMIN
    OPTION on (those it created among them).
    """
    if scope.major >= _CREATEROLE_SCOPED_SINCE:
        return []
    return [
        f"roles.{name}: createrole on PostgreSQL {scope.major} lets {name} alter, "
        "drop and grant any database role that is not a superuser, "
        "pg_execute_server_program (programs run as the postgres OS user) "
        "included; PostgreSQL 16 limits it to the roles it administers; set "
        f"createrole: false on roles.{name} unless it must manage database roles"
        for name, role in scope.spec.roles.items()
        if role.createrole
    ]


def comment_text(role: RoleSpec) -> str:
    return f"{MANAGED_MARK}: {role.comment}" if role.comment else MANAGED_MARK


def _options(current: RoleState, role: RoleSpec) -> sql.Composable | None:
    wanted = {
        "login": role.login,
        "inherit": role.inherit,
        "createdb": role.createdb,
        "createrole": role.createrole,
        "superuser": False,
        "replication": False,
        "bypassrls": False,
    }
    parts: list[sql.Composable] = [
        sql.SQL(on if wanted[attribute] else off)
        for attribute, on, off in _FLAGS
        if getattr(current, attribute) != wanted[attribute]
    ]
    if current.connection_limit != role.connection_limit:
        limit = integer(role.connection_limit)
        parts.append(sql.SQL("CONNECTION LIMIT {}").format(limit))
    until = None if role.valid_until == "infinity" else role.valid_until
    if current.valid_until != until:
        parts.append(sql.SQL("VALID UNTIL {}").format(sql.Literal(until or "infinity")))
    return sql.SQL(" ").join(parts) if parts else None


def _matches(stored: PasswordState, secret: Secret) -> bool:
    if stored.kind != "scram" or stored.salt_and_iterations is None:
        return False
    return digest_matches(stored.salt_and_iterations, stored.digest, secret)


def _password_statement(name: str, secret: Secret) -> Statement:
    query = sql.SQL("ALTER ROLE {} PASSWORD {}")
    verifier = make_verifier(secret)
    return statement(
        None,
        query.format(identifier(name), sql.Literal(verifier)),
        query.format(identifier(name), sql.Literal(MASK)),
    )


def _setting_name(name: str) -> sql.Identifier:
    # An extension's setting (prefix.name) is two identifiers joined by a dot.
    return sql.Identifier(*name.split("."))


def _setting_value(name: str, value: SettingValue) -> sql.Composable:
    text = _text(value)
    if name in _LIST_SETTINGS:
        return sql.SQL(", ").join(sql.Literal(item) for item in _elements(text))
    return sql.Literal(text)


def _same(name: str, stored: str, value: SettingValue) -> bool:
    if name in _LIST_SETTINGS:
        return _elements(stored) == _elements(_text(value))
    return stored == _text(value)


def _text(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _elements(text: str) -> tuple[str, ...]:
    # The server stores list settings as identifiers: app, "$user", "My Schema".
    items = []
    for match in _ELEMENT.finditer(text):
        quoted, bare = match.groups()
        item = quoted.replace('""', '"') if quoted is not None else bare.strip()
        if item:
            items.append(item)
    return tuple(items)
