"""Forged, stale and tampered tokens, sent from client1: none gets in.

The gateway trusts one RS256 key, named by ``kid`` in the identity provider's
JWKS, and checks the audience and the issuer. Each attack below changes one
thing about an otherwise valid token; the valid token itself must work, or
the refusals would prove nothing.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import AUDIENCE, KID, Target

pytestmark = pytest.mark.lab

CALLS = """
api = Api(DATA["host"])
result = {}
for name, token in DATA["tokens"].items():
    status, headers, text = api.call(
        "GET", "/customers?select=id", {"Authorization": "Bearer " + token})
    result[name] = [status, text]
"""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(target: Target) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": KID}).encode())
    payload = _b64(json.dumps(target.claims()).encode())
    return f"{header}.{payload}."


def _tampered(target: Target) -> str:
    header, _, signature = target.token().split(".")
    claims = target.claims(role="app_owner")
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _hmac_with_public_key(target: Target) -> str:
    # PyJWT itself refuses a PEM as an HMAC secret, which is the point of the
    # attack; build the token by hand, as an attacker's tool would.
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KID}).encode())
    payload = _b64(json.dumps(target.claims()).encode())
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(target.public_pem(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def _foreign_key(kid: str) -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"role": "web_user", "sub": "x", "aud": AUDIENCE, "exp": now + 600}
    return jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})


def attacks(target: Target) -> dict[str, str]:
    now = int(time.time())
    client = target.client.address
    return {
        "alg-none": _unsigned(target),
        "hs256-signed-with-the-rsa-public-key": _hmac_with_public_key(target),
        "expired": target.token(exp=now - 3600, iat=now - 7200),
        "not-yet-valid": target.token(nbf=now + 3600),
        "wrong-audience": target.token(aud="some-other-api"),
        "no-audience": target.token(aud=None),
        "wrong-issuer": target.token(iss="https://evil.attack.test"),
        "unknown-kid": _foreign_key("attack-unknown"),
        "known-kid-foreign-key": _foreign_key(KID),
        "role-not-granted": target.token(role="app_owner"),
        "role-postgres": target.token(role="postgres"),
        "tampered-payload": _tampered(target),
        "oversized": target.token(padding="x" * 20_000),
        "jku-pointing-elsewhere": jwt.encode(
            target.claims(),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": "x", "jku": f"https://{client}:9/jwks.json"},
        ),
        "garbage": "a.b.c",
        "empty": "",
    }


def test_a_valid_token_gets_in(target: Target) -> None:
    result = target.client.run(
        CALLS, {"host": target.gateway_address, "tokens": {"valid": target.token()}}
    )
    status, text = result["valid"]
    assert status == 200, text
    assert json.loads(text) == [{"id": 1}, {"id": 2}]


def test_no_forged_or_stale_token_gets_in(target: Target) -> None:
    tokens = attacks(target)
    result = target.client.run(
        CALLS, {"host": target.gateway_address, "tokens": tokens}
    )
    accepted = {name: got for name, got in result.items() if got[0] < 400}
    assert accepted == {}, f"tokens accepted: {sorted(accepted)}"
    for name, (status, text) in result.items():
        assert status in {400, 401, 403, 431}, (name, status, text)
        assert "Traceback" not in text, (name, text)
        assert not tokens[name] or tokens[name][:40] not in text, name
        if status != 431:
            assert set(json.loads(text)) >= {"code", "message"}, (name, text)
