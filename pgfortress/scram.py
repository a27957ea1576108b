"""PostgreSQL SCRAM-SHA-256 password verifiers, computed on the control machine.

Roles are given a verifier (``ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'``)
instead of the password, so the cleartext never reaches a database host, its
logs or ``pg_stat_statements``. The verifier has PostgreSQL's stored form::

    SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>

with the three binary fields in standard base64 (RFC 5802, RFC 7677).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass, field

from pgfortress.errors import SpecError
from pgfortress.secrets import Secret

__all__ = [
    "DEFAULT_ITERATIONS",
    "ScramVerifier",
    "digest_matches",
    "make_verifier",
    "parse_verifier",
    "password_bytes",
    "verifier_matches",
]

DEFAULT_ITERATIONS = 4096
_MECHANISM = "SCRAM-SHA-256"
_KEY_LENGTH = 32
_SALT_LENGTH = 16
_MAX_ITERATIONS = 2**31 - 1  # PostgreSQL keeps the count in a C int
_SHAPE = re.compile(
    r"SCRAM-SHA-256\$(?P<iterations>[1-9][0-9]{0,9}):(?P<salt>[^$:]+)"
    r"\$(?P<stored_key>[^$:]+):(?P<server_key>[^$:]+)"
)


@dataclass(frozen=True)
class ScramVerifier:
    """The parts of a stored verifier; the keys are left out of ``repr``.

    StoredKey and ServerKey are not the password, but they allow an offline
    guessing attack on it and let their holder pose as the server, so they
    are treated as sensitive too.
    """

    iterations: int
    salt: bytes
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.iterations <= _MAX_ITERATIONS:
            raise SpecError(
                f"SCRAM iteration count {self.iterations} is out of range: "
                f"use 1 to {_MAX_ITERATIONS} (PostgreSQL's default is 4096)"
            )
        if not self.salt:
            raise SpecError("SCRAM salt is empty: use at least 16 random bytes")
        for name in ("stored_key", "server_key"):
            if len(getattr(self, name)) != _KEY_LENGTH:
                raise SpecError(
                    f"SCRAM {name} must be {_KEY_LENGTH} bytes (a SHA-256 digest)"
                )

    def to_text(self) -> str:
        """Render PostgreSQL's stored form."""
        return (
            f"{_MECHANISM}${self.iterations}:{_b64(self.salt)}"
            f"${_b64(self.stored_key)}:{_b64(self.server_key)}"
        )


def make_verifier(
    password: Secret,
    *,
    salt: bytes | None = None,
    iterations: int = DEFAULT_ITERATIONS,
) -> str:
    """Compute the verifier PostgreSQL would store for ``password``.

    ``salt`` defaults to 16 fresh random bytes, as PostgreSQL uses; pass one
    only to reproduce a known verifier. The password is prepared exactly as
    :func:`password_bytes` describes.
    """
    if salt is None:
        salt = secrets.token_bytes(_SALT_LENGTH)
    # Validate before the key stretching, which is slow for large counts.
    ScramVerifier(iterations, salt, bytes(_KEY_LENGTH), bytes(_KEY_LENGTH))
    return _derive(password_bytes(password), salt, iterations).to_text()


def parse_verifier(text: str) -> ScramVerifier:
    """Split a stored verifier into its parts, or raise :class:`SpecError`.

    This accepts a strict subset of what PostgreSQL's parser takes: a plain
    decimal iteration count (no sign, spaces or leading zeros), a non-empty
    salt and padded standard base64 throughout.
    """
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise SpecError(
            "not a SCRAM-SHA-256 verifier: expected "
            "'SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>' "
            "with base64 salt and keys"
        )
    return ScramVerifier(
        iterations=int(match["iterations"]),
        salt=_unb64(match["salt"], "salt"),
        stored_key=_unb64(match["stored_key"], "StoredKey"),
        server_key=_unb64(match["server_key"], "ServerKey"),
    )


def verifier_matches(stored: str, password: Secret) -> bool:
    """Tell whether ``stored`` was made from ``password``.

    The verifier is recomputed with the stored salt and iteration count and
    both keys are compared in constant time. A malformed ``stored`` raises
    :class:`SpecError` rather than reading as a mismatch, so a corrupt value
    is never mistaken for a changed password.
    """
    expected = parse_verifier(stored)
    actual = _derive(password_bytes(password), expected.salt, expected.iterations)
    stored_ok = hmac.compare_digest(actual.stored_key, expected.stored_key)
    server_ok = hmac.compare_digest(actual.server_key, expected.server_key)
    return stored_ok and server_ok


def password_bytes(password: Secret) -> bytes:
    """The bytes PostgreSQL feeds to PBKDF2 for ``password``.

    This follows PostgreSQL's ``pg_saslprep`` (src/common/saslprep.c), which
    differs from RFC 4013 in ways that change the result:

    1. A pure-ASCII password is used as it is: no mapping, no normalization,
       and even ASCII control characters are kept.
    2. Otherwise each non-ASCII space (RFC 3454 table C.1.2) becomes U+0020
       and each "commonly mapped to nothing" character (table B.1) is dropped.
    3. If nothing is left, SASLprep fails.
    4. SASLprep fails if any *mapped* character, before normalization, is in
       SASLprep's prohibited tables (C.1.2, C.2.1, C.2.2, C.3 to C.9) or is
       unassigned in Unicode 3.2 (table A.1). RFC 4013 checks the normalized
       string instead; PostgreSQL does not, and neither do we.
    5. Bidirectional rule on the same mapped characters: if any is in table
       D.1 (right-to-left), none may be in D.2 (left-to-right) and the first
       and last must both be in D.1; otherwise SASLprep fails.
    6. On success the result is the NFKC normalization of the mapped text.

    Whenever SASLprep fails, PostgreSQL silently uses the password's raw
    UTF-8 bytes, and so does this function. Python's NFKC may follow a newer
    Unicode version than the server's, but step 4 has by then ruled out every
    character unassigned in Unicode 3.2, and normalization of assigned
    characters never changes between versions, so both agree.

    A password containing NUL (which PostgreSQL cannot take) or a lone
    surrogate (which has no UTF-8 form) raises :class:`SpecError`.
    """
    text = password.reveal()
    if "\x00" in text:
        raise SpecError("the password contains a NUL character: remove it")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        # Suppress the context: the codec error carries the whole password.
        raise SpecError("the password is not valid Unicode text") from None
    if text.isascii():
        return raw
    prepared = _saslprep(text)
    return raw if prepared is None else prepared.encode("utf-8")


def _saslprep(text: str) -> str | None:
    mapped = [
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if stringprep.in_table_c12(char) or not stringprep.in_table_b1(char)
    ]
    if not mapped or any(_prohibited(char) for char in mapped):
        return None
    if any(stringprep.in_table_d1(char) for char in mapped) and (
        any(stringprep.in_table_d2(char) for char in mapped)
        or not stringprep.in_table_d1(mapped[0])
        or not stringprep.in_table_d1(mapped[-1])
    ):
        return None
    return unicodedata.normalize("NFKC", "".join(mapped))


def _prohibited(char: str) -> bool:
    return (
        stringprep.in_table_c12(char)
        or stringprep.in_table_c21_c22(char)
        or stringprep.in_table_c3(char)
        or stringprep.in_table_c4(char)
        or stringprep.in_table_c5(char)
        or stringprep.in_table_c6(char)
        or stringprep.in_table_c7(char)
        or stringprep.in_table_c8(char)
        or stringprep.in_table_c9(char)
        or stringprep.in_table_a1(char)
    )


def _derive(prepared: bytes, salt: bytes, iterations: int) -> ScramVerifier:
    salted = hashlib.pbkdf2_hmac("sha256", prepared, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    return ScramVerifier(iterations, salt, stored_key, server_key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SpecError(f"SCRAM verifier {what} is not valid base64") from None


def digest_matches(salt_and_iterations: str, digest: str, password: Secret) -> bool:
    """Whether a server's verifier, known only by salt and md5 digest, fits.

    ``salt_and_iterations`` is the ``<iterations>:<base64 salt>`` part of the
    stored verifier and ``digest`` the md5 of the whole verifier: what the
    catalog queries read, so the verifier itself never leaves the server.
    The verifier is recomputed here and the digests compared.
    """
    iterations, _, salt = salt_and_iterations.partition(":")
    try:
        salt_bytes = base64.b64decode(salt, validate=True)
        count = int(iterations)
    except (ValueError, binascii.Error):
        return False
    if not salt_bytes or count < 1:
        return False
    verifier = make_verifier(password, salt=salt_bytes, iterations=count)
    mine = hashlib.md5(verifier.encode(), usedforsecurity=False).hexdigest()
    return hmac.compare_digest(mine, digest)
