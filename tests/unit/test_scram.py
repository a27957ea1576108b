"""SCRAM-SHA-256 verifiers as PostgreSQL stores them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest

from pgfortress.errors import PgFortressError, SpecError
from pgfortress.scram import (
    DEFAULT_ITERATIONS,
    ScramVerifier,
    make_verifier,
    parse_verifier,
    password_bytes,
    verifier_matches,
)
from pgfortress.secrets import Secret

# RFC 7677, section 3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_NONCE = RFC_CLIENT_NONCE + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_AUTH_MESSAGE = (
    f"n=user,r={RFC_CLIENT_NONCE},"
    f"r={RFC_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    f"c=biws,r={RFC_NONCE}"
).encode()
RFC_CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
# Pinned once the two tests below proved it consistent with the RFC exchange.
RFC_VERIFIER = (
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
    ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
)
PASSWORD = "s3cret-Pa55word"
VALID = make_verifier(Secret(PASSWORD), salt=b"0123456789abcdef", iterations=16)


def reference_verifier(prepared: bytes, salt: bytes, iterations: int) -> str:
    """RFC 5802 written out by hand, sharing no code with pgfortress.scram."""

    def mac(key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()

    # PBKDF2 with one output block, since SHA-256 yields exactly 32 bytes.
    block = mac(prepared, salt + b"\x00\x00\x00\x01")
    salted = block
    for _ in range(iterations - 1):
        block = mac(prepared, block)
        salted = bytes(x ^ y for x, y in zip(salted, block, strict=True))
    stored_key = hashlib.sha256(mac(salted, b"Client Key")).digest()
    server_key = mac(salted, b"Server Key")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --- the RFC 7677 test vector ------------------------------------------------


def test_rfc7677_client_proof_checks_out_against_our_stored_key() -> None:
    verifier = parse_verifier(make_verifier(Secret("pencil"), salt=RFC_SALT))
    client_signature = hmac.digest(verifier.stored_key, RFC_AUTH_MESSAGE, "sha256")
    client_key = bytes(
        p ^ s for p, s in zip(RFC_CLIENT_PROOF, client_signature, strict=True)
    )
    assert hashlib.sha256(client_key).digest() == verifier.stored_key


def test_rfc7677_server_signature_checks_out_against_our_server_key() -> None:
    verifier = parse_verifier(make_verifier(Secret("pencil"), salt=RFC_SALT))
    signature = hmac.digest(verifier.server_key, RFC_AUTH_MESSAGE, "sha256")
    assert signature == RFC_SERVER_SIGNATURE


def test_rfc7677_verifier_text() -> None:
    assert make_verifier(Secret("pencil"), salt=RFC_SALT) == RFC_VERIFIER
    assert reference_verifier(b"pencil", RFC_SALT, 4096) == RFC_VERIFIER


# --- making and checking verifiers -------------------------------------------


@pytest.mark.parametrize("iterations", [1, 2, 16, 4096])
@pytest.mark.parametrize("password", ["pencil", "x", "p\u00e4ssw\u00f6rd"])
def test_make_verifier_agrees_with_the_reference(
    password: str, iterations: int
) -> None:
    salt = b"fixed-salt-bytes"
    expected = reference_verifier(password.encode(), salt, iterations)
    assert make_verifier(Secret(password), salt=salt, iterations=iterations) == (
        expected
    )


def test_defaults_are_a_fresh_16_byte_salt_and_4096_iterations() -> None:
    first = parse_verifier(make_verifier(Secret(PASSWORD)))
    second = parse_verifier(make_verifier(Secret(PASSWORD)))
    assert first.iterations == DEFAULT_ITERATIONS == 4096
    assert len(first.salt) == 16
    assert first.salt != second.salt


def test_parse_then_render_round_trips() -> None:
    parsed = parse_verifier(VALID)
    assert parsed.iterations == 16
    assert parsed.salt == b"0123456789abcdef"
    assert len(parsed.stored_key) == len(parsed.server_key) == 32
    assert parsed.to_text() == VALID


@pytest.mark.parametrize(
    ("candidate", "matches"),
    [
        (PASSWORD, True),
        (PASSWORD + " ", False),
        (PASSWORD.upper(), False),
        ("", False),
    ],
)
def test_verifier_matches(candidate: str, matches: bool) -> None:
    assert verifier_matches(VALID, Secret(candidate)) is matches


def test_verifier_matches_uses_the_stored_salt_and_count() -> None:
    stored = make_verifier(Secret(PASSWORD), salt=b"another salt", iterations=7)
    assert verifier_matches(stored, Secret(PASSWORD))


def test_verifier_repr_leaves_out_the_keys() -> None:
    parsed = parse_verifier(VALID)
    text = repr(parsed)
    assert "stored_key" not in text
    assert "server_key" not in text
    assert "iterations=16" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": 0}, "iteration count 0"),
        ({"iterations": -5}, "iteration count -5"),
        ({"iterations": 2**31}, "iteration count 2147483648"),
        ({"salt": b""}, "salt is empty"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        make_verifier(Secret(PASSWORD), **kwargs)  # type: ignore[arg-type]


# --- SASLprep, the PostgreSQL way --------------------------------------------


@pytest.mark.parametrize(
    ("password", "prepared"),
    [
        pytest.param("pencil", b"pencil", id="ascii-untouched"),
        pytest.param("\x07bell", b"\x07bell", id="ascii-control-kept"),
        pytest.param("\u00aa", b"a", id="nfkc-feminine-ordinal"),
        pytest.param("\u2168", b"IX", id="nfkc-roman-numeral"),
        pytest.param("\ufb01", b"fi", id="nfkc-ligature"),
        pytest.param("\uff21", b"A", id="nfkc-fullwidth"),
        pytest.param("I\u00adX", b"IX", id="soft-hyphen-dropped"),
        pytest.param("a\u2003b", b"a b", id="em-space-to-space"),
        pytest.param("\u200b\u00e9", " \u00e9".encode(), id="zwsp-to-space-first"),
        pytest.param("\u1e9b\u0323", "\u1e69".encode(), id="nfkc-composes"),
        pytest.param("\u0627\u0628", "\u0627\u0628".encode(), id="rtl-only-ok"),
    ],
)
def test_saslprep_normalizes(password: str, prepared: bytes) -> None:
    assert password_bytes(Secret(password)) == prepared
    salt = b"saltsaltsaltsalt"
    assert make_verifier(Secret(password), salt=salt, iterations=2) == (
        reference_verifier(prepared, salt, 2)
    )


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("\u00aa\ue000", id="private-use"),
        pytest.param("\u00aa\x07", id="control-after-non-ascii"),
        pytest.param("\u00ad", id="empty-after-mapping"),
        pytest.param("\u00aa\u2028", id="line-separator"),
        pytest.param("\u0627a", id="rtl-mixed-with-ltr"),
        pytest.param("\u06271", id="rtl-not-last"),
        pytest.param("\U0001f100", id="unassigned-in-3.2-before-nfkc"),
    ],
)
def test_failed_saslprep_falls_back_to_the_raw_bytes(password: str) -> None:
    assert password_bytes(Secret(password)) == password.encode("utf-8")
    salt = b"saltsaltsaltsalt"
    assert make_verifier(Secret(password), salt=salt, iterations=2) == (
        reference_verifier(password.encode("utf-8"), salt, 2)
    )


# --- malformed verifiers -----------------------------------------------------

_, _ITER_SALT, _KEYS = VALID.split("$")
_SALT = _ITER_SALT.split(":")[1]
_STORED, _SERVER = _KEYS.split(":")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("md5" + "0" * 32, id="md5"),
        pytest.param(PASSWORD, id="cleartext"),
        pytest.param(VALID.replace("SCRAM-SHA-256", "SCRAM-SHA-1"), id="mechanism"),
        pytest.param(VALID.replace("SCRAM-SHA-256", "scram-sha-256"), id="case"),
        pytest.param(VALID.replace("$16:", "$0:"), id="zero-iterations"),
        pytest.param(VALID.replace("$16:", "$016:"), id="leading-zero"),
        pytest.param(VALID.replace("$16:", "$+16:"), id="signed"),
        pytest.param(VALID.replace("$16:", "$ 16:"), id="space"),
        pytest.param(VALID.replace("$16:", "$1_6:"), id="underscore"),
        pytest.param(VALID.replace("$16:", "$2147483648:"), id="too-many"),
        pytest.param(VALID.replace(f":{_SALT}$", ":$"), id="empty-salt"),
        pytest.param(VALID.replace(_SALT, "not base64!"), id="salt-alphabet"),
        pytest.param(VALID.replace(_SALT, _SALT.rstrip("=")), id="salt-padding"),
        pytest.param(VALID.replace(_STORED, _STORED[:-4]), id="short-stored-key"),
        pytest.param(VALID.replace(_SERVER, _STORED + "AAAA"), id="long-server-key"),
        pytest.param(VALID.replace(f":{_SERVER}", ""), id="missing-server-key"),
        pytest.param(VALID + "$extra", id="extra-field"),
        pytest.param(VALID + "\n", id="trailing-newline"),
        pytest.param(" " + VALID, id="leading-space"),
    ],
)
def test_malformed_verifiers_are_refused(text: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_verifier(text)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, PgFortressError)
    with pytest.raises(SpecError):
        verifier_matches(text, Secret(PASSWORD))


def test_verifier_fields_are_checked_on_construction() -> None:
    with pytest.raises(SpecError, match="stored_key must be 32 bytes"):
        ScramVerifier(4096, b"salt", b"short", bytes(32))


# --- the password never shows up in an error ---------------------------------


@pytest.mark.parametrize(
    ("password", "call"),
    [
        (PASSWORD, lambda s: verifier_matches("garbage", s)),
        (PASSWORD, lambda s: verifier_matches(VALID.replace("$16:", "$0:"), s)),
        (PASSWORD, lambda s: make_verifier(s, iterations=0)),
        (PASSWORD, lambda s: make_verifier(s, salt=b"")),
        (PASSWORD + "\x00tail", make_verifier),
        (PASSWORD + "\ud800tail", make_verifier),
        (PASSWORD + "\ud800tail", password_bytes),
    ],
)
def test_errors_never_contain_the_password(
    password: str, call: Callable[[Secret], object]
) -> None:
    secret = Secret(password)
    with pytest.raises(SpecError) as caught:
        call(secret)
    for text in (str(caught.value), repr(caught.value)):
        assert PASSWORD not in text
        assert "tail" not in text
    # The codec error would carry the whole string; it must not be chained.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
