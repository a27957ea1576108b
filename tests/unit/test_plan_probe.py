"""SQL for the probe database role: composed, quoted, never formatted."""

from __future__ import annotations

import hashlib

import pytest

from pgfortress.plan.probe import (
    ProbeState,
    parse_probe_state,
    password_matches,
    probe_script,
    probe_state_query,
)
from pgfortress.scram import make_verifier
from pgfortress.secrets import Secret


def test_state_query_quotes_the_role_as_a_literal() -> None:
    query = probe_state_query("o'brien")
    assert "rolname = 'o''brien'" in query


def test_script_quotes_identifier_and_verifier() -> None:
    script = probe_script('we"ird', "SCRAM-SHA-256$4096:c2FsdA==$a:b")
    assert 'CREATE ROLE "we""ird";' in script
    assert "PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'" in script
    assert "NOSUPERUSER" in script
    assert "LOGIN" in script


def test_script_creates_only_when_missing() -> None:
    lines = probe_script("p", "v").splitlines()
    assert lines[0].endswith("\\gset")
    assert lines[1] == "\\if :missing"
    assert lines[3] == "\\endif"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("", None),
        ("\n", None),
        ("t|4096:c2FsdA==|0123abcd\n", (True, "4096:c2FsdA==", "0123abcd")),
        ("f||\n", (False, "", "")),
        ("||\n", None),
    ],
)
def test_state_parsing(output: str, expected: tuple[bool, str, str] | None) -> None:
    state = parse_probe_state(output)
    if expected is None:
        assert state is None
    else:
        assert state is not None
        assert (state.can_login, state.salt_and_iterations, state.verifier_md5) == (
            expected
        )


def _state_for(verifier: str, can_login: bool = True) -> ProbeState:
    salt_part = verifier.split("$")[1]
    digest = hashlib.md5(verifier.encode(), usedforsecurity=False).hexdigest()
    return ProbeState(can_login, salt_part, digest)


def test_password_matches_the_servers_verifier_through_its_digest() -> None:
    password = Secret("correct horse")
    stored = make_verifier(password)
    assert password_matches(_state_for(stored), password)
    assert not password_matches(_state_for(stored), Secret("wrong horse"))


@pytest.mark.parametrize("salt_part", ["", "x:y", "4096:", "0:c2FsdA==", "4096:@@"])
def test_unreadable_salt_means_no_match(salt_part: str) -> None:
    assert not password_matches(ProbeState(True, salt_part, "0" * 32), Secret("p"))
