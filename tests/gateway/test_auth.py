"""JWT and API key authentication: every token case the gateway must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pgfortress_gateway.auth
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pgfortress_gateway.auth import (
    Authenticator,
    CredentialsError,
    Identity,
    RoleNotAllowedError,
    token_fingerprint,
)
from pgfortress_gateway.config import ApiKeyConfig, ConfigError, JwtConfig

SECRET = b"s" * 16 + b"e" * 16 + b"cret"
OTHER_SECRET = b"x" * 40
AUDIENCE = "pgfortress"
ISSUER = "https://issuer.example"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], mac: bytes | None) -> str:
    """Build a token by hand, as an attacker would, bypassing PyJWT's guards."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    signing_input = f"{head}.{body}".encode()
    signature = b"" if mac is None else hmac.digest(mac, signing_input, "sha256")
    return f"{head}.{body}.{_b64(signature)}"


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Any) -> bytes:
    data: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


@dataclass(frozen=True)
class Keys:
    rsa_key: rsa.RSAPrivateKey
    ec_key: ec.EllipticCurvePrivateKey
    other_ec_key: ec.EllipticCurvePrivateKey
    ed_key: ed25519.Ed25519PrivateKey
    directory: Path

    def write(self, name: str, data: bytes, mode: int = 0o644) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        path.chmod(mode)
        return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(
        rsa_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_key=ec.generate_private_key(ec.SECP256R1()),
        other_ec_key=ec.generate_private_key(ec.SECP256R1()),
        ed_key=ed25519.Ed25519PrivateKey.generate(),
        directory=tmp_path_factory.mktemp("keys"),
    )


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"role": "web_user", "sub": "alice", "exp": now + 600}
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def hs(payload: dict[str, Any] | None = None, secret: bytes = SECRET) -> str:
    return jwt.encode(claims() if payload is None else payload, secret, "HS256")


def jwks_document(keys: Keys) -> dict[str, Any]:
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys.rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys.ec_key.public_key()))
    return {"keys": [rsa_jwk | {"kid": "k1"}, ec_jwk | {"kid": "k2", "use": "sig"}]}


@pytest.fixture(scope="module")
def authenticators(keys: Keys) -> dict[str, Authenticator]:
    secret = keys.write("secret", SECRET + b"\n", 0o600)
    jwks = keys.write("jwks.json", json.dumps(jwks_document(keys)).encode())
    configs = {
        "hs": JwtConfig(secret_file=secret),
        "hs_aud": JwtConfig(secret_file=secret, audience=AUDIENCE, issuer=ISSUER),
        "rsa": JwtConfig(
            public_key_file=keys.write("rsa.pem", _public_pem(keys.rsa_key))
        ),
        "ec": JwtConfig(public_key_file=keys.write("ec.pem", _public_pem(keys.ec_key))),
        "ed": JwtConfig(public_key_file=keys.write("ed.pem", _public_pem(keys.ed_key))),
        "jwks": JwtConfig(jwks_file=jwks),
    }
    return {name: Authenticator(config) for name, config in configs.items()}


TokenCase = Callable[[Keys], str]

VALID: list[Any] = [
    pytest.param("hs", lambda k: f"Bearer {hs()}", id="hs256"),
    pytest.param("hs", lambda k: f"bearer {hs()}", id="scheme-is-case-insensitive"),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp=int(time.time()) - 10))}",
        id="expired-within-leeway",
    ),
    pytest.param(
        "hs_aud",
        lambda k: f"Bearer {hs(claims(aud=AUDIENCE, iss=ISSUER))}",
        id="audience-and-issuer",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp=time.time() + 600.5, nbf=1.5, iat=0))}",
        id="numeric-dates-as-float-and-int",
    ),
    pytest.param(
        "rsa",
        lambda k: "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256"),
        id="rs256",
    ),
    pytest.param(
        "ec", lambda k: "Bearer " + jwt.encode(claims(), k.ec_key, "ES256"), id="es256"
    ),
    pytest.param(
        "ed", lambda k: "Bearer " + jwt.encode(claims(), k.ed_key, "EdDSA"), id="eddsa"
    ),
    pytest.param(
        "jwks",
        lambda k: (
            "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256", headers={"kid": "k1"})
        ),
        id="jwks-rs256",
    ),
    pytest.param(
        "jwks",
        lambda k: (
            "Bearer " + jwt.encode(claims(), k.ec_key, "ES256", headers={"kid": "k2"})
        ),
        id="jwks-es256",
    ),
]


@pytest.mark.parametrize(("authenticator", "header"), VALID)
def test_valid_token_gives_role_and_subject(
    keys: Keys,
    authenticators: dict[str, Authenticator],
    authenticator: str,
    header: TokenCase,
) -> None:
    identity = authenticators[authenticator].authenticate(header(keys), None)
    assert (identity.role, identity.subject, identity.kind) == (
        "web_user",
        "alice",
        "jwt",
    )


def _tamper_payload(token: str) -> str:
    head, _, signature = token.split(".")
    body = _b64(json.dumps(claims(role="admin_user")).encode())
    return f"{head}.{body}.{signature}"


def _tamper_signature(token: str) -> str:
    head, body, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{head}.{body}.{flipped}{signature[1:]}"


INVALID: list[Any] = [
    # The shape of the header.
    pytest.param("hs", lambda k: "", "not a bearer token", id="empty-header"),
    pytest.param("hs", lambda k: "Bearer", "malformed authorization", id="bearer-only"),
    pytest.param("hs", lambda k: "Bearer ", "malformed authorization", id="no-token"),
    pytest.param(
        "hs", lambda k: "Basic dXNlcjpwYXNz", "not a bearer token", id="basic-auth"
    ),
    pytest.param(
        "hs", lambda k: f"Bearer  {hs()}", "malformed authorization", id="two-spaces"
    ),
    pytest.param(
        "hs", lambda k: f"Bearer {hs()} x", "malformed authorization", id="trailing"
    ),
    pytest.param(
        "hs", lambda k: "Bearer abc.def", "malformed authorization", id="two-parts"
    ),
    pytest.param("hs", lambda k: "Bearer a.b.c", "malformed token", id="not-base64"),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(pad='x' * 9000))}",
        "token too long",
        id="oversized",
    ),
    # Algorithms: fixed by the key, never by the token.
    pytest.param(
        "hs",
        lambda k: "Bearer " + forge({"alg": "none"}, claims(), None),
        "alg none",
        id="alg-none",
    ),
    pytest.param(
        "rsa",
        lambda k: "Bearer " + forge({"alg": "None", "typ": "JWT"}, claims(), None),
        "alg none",
        id="alg-none-capitalised",
    ),
    pytest.param(
        "rsa",
        lambda k: (
            "Bearer "
            + forge({"alg": "HS256", "typ": "JWT"}, claims(), _public_pem(k.rsa_key))
        ),
        "algorithm HS256 not allowed",
        id="hmac-with-rsa-public-key",
    ),
    pytest.param(
        "ec",
        lambda k: "Bearer " + forge({"alg": "HS256"}, claims(), _public_pem(k.ec_key)),
        "algorithm HS256 not allowed",
        id="hmac-with-ec-public-key",
    ),
    pytest.param(
        "hs",
        lambda k: "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256"),
        "algorithm RS256 not allowed",
        id="rs256-to-hmac-key",
    ),
    pytest.param(
        "hs",
        lambda k: "Bearer " + jwt.encode(claims(), SECRET * 2, "HS512"),
        "algorithm HS512 not allowed",
        id="hs512",
    ),
    pytest.param(
        "rsa",
        lambda k: "Bearer " + jwt.encode(claims(), k.ec_key, "ES256"),
        "algorithm ES256 not allowed",
        id="es256-to-rsa-key",
    ),
    pytest.param(
        "jwks",
        lambda k: (
            "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256", headers={"kid": "k2"})
        ),
        "algorithm RS256 not allowed",
        id="kid-of-another-key-type",
    ),
    # Signatures.
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(secret=OTHER_SECRET)}",
        "bad signature",
        id="other-secret",
    ),
    pytest.param(
        "ec",
        lambda k: "Bearer " + jwt.encode(claims(), k.other_ec_key, "ES256"),
        "bad signature",
        id="other-ec-key",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {_tamper_payload(hs())}",
        "bad signature",
        id="tampered-payload",
    ),
    pytest.param(
        "rsa",
        lambda k: (
            "Bearer " + _tamper_signature(jwt.encode(claims(), k.rsa_key, "RS256"))
        ),
        "bad signature",
        id="tampered-signature",
    ),
    # Key ids.
    pytest.param(
        "jwks",
        lambda k: (
            "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256", headers={"kid": "k9"})
        ),
        "unknown kid",
        id="unknown-kid",
    ),
    pytest.param(
        "jwks",
        lambda k: "Bearer " + jwt.encode(claims(), k.rsa_key, "RS256"),
        "missing kid",
        id="missing-kid",
    ),
    # Time and audience.
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp=int(time.time()) - 3600))}",
        "token expired",
        id="expired",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(nbf=int(time.time()) + 3600))}",
        "not yet valid",
        id="nbf-in-future",
    ),
    pytest.param(
        "hs", lambda k: f"Bearer {hs(claims(exp=None))}", "claim missing", id="no-exp"
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp='tomorrow'))}",
        "malformed token",
        id="exp-not-a-number",
    ),
    # Time claims must be JSON numbers; PyJWT alone accepts numeric strings.
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp=str(int(time.time()) + 600)))}",
        "claim exp is not a number",
        id="exp-numeric-string",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(nbf='0'))}",
        "claim nbf is not a number",
        id="nbf-string",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(iat='0'))}",
        "claim iat is not a number",
        id="iat-string",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(nbf=True))}",
        "claim nbf is not a number",
        id="nbf-boolean",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(exp=10**400))}",
        "claim exp is not a number",
        id="exp-too-large-for-a-float",
    ),
    pytest.param(
        "hs",
        lambda k: "Bearer " + forge({"alg": "HS256"}, claims(iat=[1]), SECRET),
        "claim iat is not a number",
        id="iat-list",
    ),
    pytest.param(
        "hs_aud",
        lambda k: f"Bearer {hs(claims(aud='other', iss=ISSUER))}",
        "wrong audience",
        id="wrong-audience",
    ),
    pytest.param(
        "hs_aud",
        lambda k: f"Bearer {hs(claims(iss=ISSUER))}",
        "claim missing",
        id="missing-audience",
    ),
    pytest.param(
        "hs_aud",
        lambda k: f"Bearer {hs(claims(aud=AUDIENCE, iss='https://evil.example'))}",
        "wrong issuer",
        id="wrong-issuer",
    ),
    # The role claim.
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role=None))}",
        "role claim missing",
        id="no-role",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role=7))}",
        "not a string",
        id="numeric-role",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role=['web_user']))}",
        "not a string",
        id="list-role",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role='web_user; drop table x'))}",
        "not a plain role name",
        id="role-with-sql",
    ),
    pytest.param(
        "hs",
        lambda k: "Bearer " + hs(claims(role='web"user')),
        "not a plain role name",
        id="role-with-quote",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role='Admin'))}",
        "not a plain role name",
        id="role-uppercase",
    ),
    pytest.param(
        "hs",
        lambda k: f"Bearer {hs(claims(role='pg_read_server_files'))}",
        "not a plain role name",
        id="predefined-role",
    ),
    pytest.param(
        "hs", lambda k: f"Bearer {hs(claims(role=''))}", "not a plain", id="empty-role"
    ),
]


@pytest.mark.parametrize(("authenticator", "header", "reason"), INVALID)
def test_invalid_token_is_refused_with_a_generic_message(
    keys: Keys,
    authenticators: dict[str, Authenticator],
    authenticator: str,
    header: TokenCase,
    reason: str,
) -> None:
    value = header(keys)
    with pytest.raises(CredentialsError) as caught:
        authenticators[authenticator].authenticate(value, None)

    assert caught.value.status == 401
    assert caught.value.body() == {"code": "PGF401", "message": "invalid token"}
    assert reason in caught.value.reason
    token = value.partition(" ")[2].strip()
    if token:
        assert token not in caught.value.reason
        assert token not in str(caught.value)


def test_nested_role_claim_path(keys: Keys) -> None:
    config = JwtConfig(
        secret_file=keys.write("nested", SECRET, 0o600),
        role_claim='."https://example.com/claims".role',
    )
    token = hs(claims(role=None, **{"https://example.com/claims": {"role": "clerk"}}))

    assert Authenticator(config).authenticate(f"Bearer {token}", None).role == "clerk"


def test_tokens_without_exp_are_accepted_when_configured(keys: Keys) -> None:
    config = JwtConfig(
        secret_file=keys.write("noexp", SECRET, 0o600), require_exp=False
    )
    token = hs(claims(exp=None))

    assert (
        Authenticator(config).authenticate(f"Bearer {token}", None).subject == "alice"
    )


def test_role_outside_the_allowed_list_is_forbidden(keys: Keys) -> None:
    config = JwtConfig(secret_file=keys.write("allowed", SECRET, 0o600))
    authenticator = Authenticator(config, allowed_roles={"reader"})

    with pytest.raises(RoleNotAllowedError) as caught:
        authenticator.authenticate(f"Bearer {hs()}", None)

    assert caught.value.status == 403
    assert "web_user" in caught.value.reason


def test_no_credentials_gives_anonymous_role_or_401(
    authenticators: dict[str, Authenticator], keys: Keys
) -> None:
    config = JwtConfig(secret_file=keys.write("anon", SECRET, 0o600))
    anonymous = Authenticator(config, anonymous_role="web_anon").authenticate(
        None, None
    )

    assert (anonymous.role, anonymous.subject, anonymous.kind) == (
        "web_anon",
        None,
        "anonymous",
    )
    with pytest.raises(CredentialsError, match="authentication required"):
        authenticators["hs"].authenticate(None, None)


API_KEY = "pgf_live_4f1c2b9e8d7a6b5c4d3e2f1a0b9c8d7e"


@pytest.fixture
def with_api_key(keys: Keys) -> Authenticator:
    digest = hashlib.sha256(API_KEY.encode()).hexdigest()
    return Authenticator(
        JwtConfig(secret_file=keys.write("apikeys", SECRET, 0o600)),
        api_keys=[
            ApiKeyConfig(name="billing", sha256=digest.upper(), role="billing_app"),
            ApiKeyConfig(name="other", sha256="0" * 64, role="other_app"),
        ],
    )


def test_api_key_maps_to_its_role(with_api_key: Authenticator) -> None:
    identity = with_api_key.authenticate(None, API_KEY)

    assert (identity.role, identity.subject, identity.kind) == (
        "billing_app",
        "apikey:billing",
        "api_key",
    )
    assert identity.claims_json == '{"role":"billing_app","sub":"apikey:billing"}'


@pytest.mark.parametrize(
    ("authorization", "api_key", "reason"),
    [
        (None, API_KEY[:-1], "unknown API key"),
        (None, "", "malformed API key"),
        (None, "k" * 513, "malformed API key"),
        ("Bearer a.b.c", API_KEY, "both a token and an API key"),
    ],
    ids=["wrong-key", "empty-key", "oversized-key", "token-and-key"],
)
def test_bad_api_key_is_refused(
    with_api_key: Authenticator,
    authorization: str | None,
    api_key: str,
    reason: str,
) -> None:
    with pytest.raises(CredentialsError) as caught:
        with_api_key.authenticate(authorization, api_key)

    assert reason in caught.value.reason
    assert caught.value.status == 401


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_verified_tokens_are_cached_until_they_expire(keys: Keys) -> None:
    clock = Clock()
    config = JwtConfig(secret_file=keys.write("cache", SECRET, 0o600))
    authenticator = Authenticator(config, clock=clock)
    header = f"Bearer {hs(claims(exp=int(clock.now) + 60))}"

    first = authenticator.authenticate(header, None)
    assert authenticator.authenticate(header, None) is first

    clock.now += 61
    again = authenticator.authenticate(header, None)
    assert again == first
    assert again is not first


def test_cache_is_bounded_and_evicts_the_least_recent(keys: Keys) -> None:
    config = JwtConfig(secret_file=keys.write("lru", SECRET, 0o600), cache_size=2)
    authenticator = Authenticator(config)
    headers = [f"Bearer {hs(claims(sub=name))}" for name in ("a", "b", "c")]
    first = [authenticator.authenticate(header, None) for header in headers]

    assert authenticator.authenticate(headers[2], None) is first[2]
    assert authenticator.authenticate(headers[1], None) is first[1]
    assert authenticator.authenticate(headers[0], None) is not first[0]


def test_identity_claims_are_read_only_and_serialised_once() -> None:
    identity = Identity("web_user", "alice", {"sub": "alice", "role": "web_user"})

    assert identity.claims_json == '{"role":"web_user","sub":"alice"}'
    with pytest.raises(TypeError):
        identity.claims["role"] = "admin"  # type: ignore[index]
    assert "alice" not in repr(identity).replace("subject='alice'", "")


def test_token_fingerprint_is_short_and_one_way() -> None:
    token = hs()
    fingerprint = token_fingerprint(token)

    assert len(fingerprint) == 16
    assert fingerprint not in token
    assert fingerprint == token_fingerprint(token)


def _jwks_with(keys: Keys, change: dict[str, Any]) -> dict[str, Any]:
    document = jwks_document(keys)
    document["keys"][0] |= change
    return document


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda k: {"keys": []}, "no signing key"),
        (lambda k: {"nokeys": 1}, "keys list"),
        (lambda k: _jwks_with(k, {"kid": "k2"}), "own non-empty kid"),
        (lambda k: _jwks_with(k, {"d": "AAAA"}), "secret or private"),
        (lambda k: {"keys": [{"kty": "oct", "k": "AAAA", "kid": "s"}]}, "secret"),
        (lambda k: _jwks_with(k, {"alg": "HS256"}), "allows only RS256"),
    ],
    ids=["empty", "not-jwks", "duplicate-kid", "private", "symmetric", "alg-mismatch"],
)
def test_unusable_jwks_refuses_to_start(
    keys: Keys, build: Callable[[Keys], dict[str, Any]], message: str
) -> None:
    path = keys.write("bad-jwks.json", json.dumps(build(keys)).encode())

    with pytest.raises(ConfigError, match=message):
        Authenticator(JwtConfig(jwks_file=path))


def test_private_or_weak_pem_refuses_to_start(keys: Keys) -> None:
    private = keys.rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # A weak key on purpose: the gateway must refuse it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    cases = {
        "private.pem": (private, "private key"),
        "weak.pem": (_public_pem(weak), "at least 2048"),
        "junk.pem": (b"not a key", "not a PEM public key"),
    }
    for name, (data, message) in cases.items():
        config = JwtConfig(public_key_file=keys.write(name, data, 0o600))
        with pytest.raises(ConfigError, match=message):
            Authenticator(config)


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.auth.__all__) == [
        "Authenticator",
        "CredentialsError",
        "Identity",
        "RoleNotAllowedError",
        "token_fingerprint",
    ]
