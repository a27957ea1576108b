"""SQL for the probe role: a LOGIN database role with nothing but CONNECT.

The password never leaves the control machine: only its SCRAM-SHA-256
verifier is sent, inside a script read from a root-only file. The state query
returns the verifier's salt and a digest, never the verifier itself, so the
fact holds nothing worth stealing.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ..scram import digest_matches
from ..secrets import Secret

__all__ = [
    "ProbeState",
    "parse_probe_state",
    "password_matches",
    "probe_script",
    "probe_state_query",
]


@dataclass(frozen=True)
class ProbeState:
    """What the server knows of the probe role."""

    can_login: bool
    salt_and_iterations: str
    verifier_md5: str


def password_matches(state: ProbeState, password: Secret) -> bool:
    """Whether the server's verifier was made from ``password``.

    The verifier is recomputed here with the server's salt and iteration
    count and compared through its md5 digest, the only form the fact reads.
    """
    return digest_matches(state.salt_and_iterations, state.verifier_md5, password)


def probe_state_query(role: str) -> str:
    """One row, always: the role's state, or empty fields when it is missing
    (so that the row's place in a psql output of several queries is known)."""
    return (
        sql.SQL(
            "SELECT a.rolcanlogin, split_part(a.rolpassword, '$', 2), "
            "md5(a.rolpassword) "
            "FROM (SELECT) AS one LEFT JOIN pg_authid AS a ON a.rolname = {}"
        )
        .format(sql.Literal(role))
        .as_string(None)
    )


def parse_probe_state(output: str) -> ProbeState | None:
    """Parse psql's unaligned ``-F'|'`` output; empty, or a row without a
    login flag, means no such role."""
    text = output.strip()
    if not text:
        return None
    login, salt_part, digest = text.split("|")
    if not login:
        return None
    return ProbeState(login == "t", salt_part, digest)


def probe_script(role: str, verifier: str) -> str:
    """A psql script that creates the role if missing and sets its attributes."""
    ident = sql.Identifier(role)
    exists = sql.SQL(
        "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) AS missing"
    ).format(sql.Literal(role))
    alter = sql.SQL(
        "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
        "NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD {}"
    ).format(ident, sql.Literal(verifier))
    create = sql.SQL("CREATE ROLE {}").format(ident)
    return "\n".join(
        [
            exists.as_string(None) + " \\gset",
            "\\if :missing",
            create.as_string(None) + ";",
            "\\endif",
            alter.as_string(None) + ";",
            "",
        ]
    )
