"""The gateway's configuration file and unit, rendered from inventory data."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pgfortress import tls
from pgfortress.errors import SpecError
from pgfortress.plan.gateway import (
    WHEEL_LISTING,
    GatewayLayout,
    address_filter,
    host_python_problem,
    render_gateway_config,
    render_gateway_unit,
    wheel_archive,
    wheels_to_upload,
)
from pgfortress.secrets import Secret
from pgfortress.spec.gateway import gateway_from_host_data

BASE: dict[str, Any] = {
    "gateway_database": {
        "host": "10.0.0.10",
        "dbname": "app",
        "password_secret": "db1/authenticator",
    },
    "gateway_api": {
        "schema": "api",
        "anonymous_role": "web_anon",
        "allowed_roles": ["web_anon", "web_user"],
    },
    "gateway_listen": "10.0.0.11",
    "gateway_ca_dir": "/srv/ca",
    "pgfortress_secrets_dir": "/srv/secrets",
}


def config(**data: Any) -> dict[str, Any]:
    spec = gateway_from_host_data("gw1", BASE | data)
    return tomllib.loads(render_gateway_config(spec, GatewayLayout()))


def test_config_is_valid_toml_with_every_section() -> None:
    parsed = config()
    assert set(parsed) == {"database", "api", "jwt", "cors", "limits", "server"}
    assert parsed["database"]["user"] == "authenticator"
    assert parsed["database"]["password_file"] == "/etc/pgfortress-gateway/db-password"
    assert parsed["api"]["allowed_roles"] == ["web_anon", "web_user"]
    assert parsed["server"]["listen_host"] == "10.0.0.11"
    assert parsed["server"]["metrics_host"] == "127.0.0.1"


def test_workers_are_rendered() -> None:
    redis = {"redis_host": "10.0.0.20", "redis_password_secret": "redis/password"}
    spec = gateway_from_host_data(
        "gw1", BASE | {"gateway_workers": 3, "gateway_limits": redis}
    )
    text = render_gateway_config(spec, GatewayLayout(), Secret("s3cret-value"))
    parsed = tomllib.loads(text)
    assert parsed["server"]["workers"] == 3
    assert parsed["limits"]["storage_uri"].startswith("redis://")
    assert config()["server"]["workers"] == 1


def test_workers_without_redis_share_counters_in_memory() -> None:
    """The main process maps the counters before it forks its workers."""
    parsed = config(gateway_workers=2)
    assert parsed["server"]["workers"] == 2
    assert parsed["limits"]["storage_uri"] == "memory://"


def test_values_with_quotes_stay_valid_toml() -> None:
    parsed = config(gateway_cors_origins=['https://a.example"], x = ["'])
    assert parsed["cors"]["allowed_origins"] == ['https://a.example"], x = ["']


def test_unit_is_sandboxed_and_filters_addresses() -> None:
    spec = gateway_from_host_data(
        "gw1", BASE | {"gateway_allowed_networks": ["10.0.0.0/24"]}
    )
    unit = render_gateway_unit(spec, GatewayLayout())
    for line in (
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "IPAddressDeny=any",
        "IPAddressAllow=localhost 10.0.0.0/24",
        "User=pgfortress-gw",
    ):
        assert line in unit.splitlines()


def allow_list(
    networks: list[str], database: str = "10.0.0.10", redis: str | None = None
) -> list[str]:
    """address_filter for a gateway with these networks and peers."""
    data = BASE | {
        "gateway_allowed_networks": networks,
        "gateway_database": BASE["gateway_database"] | {"host": database},
    }
    if redis is not None:
        data["gateway_limits"] = {
            "redis_host": redis,
            "redis_password_secret": "redis/password",
        }
    return address_filter(gateway_from_host_data("gw1", data))


NET4, NET6 = "192.0.2.0/24", "2001:db8::/64"


@pytest.mark.parametrize(
    ("networks", "database", "redis", "expected"),
    [
        pytest.param([], "10.0.0.10", None, [], id="no-networks-no-filter"),
        pytest.param([], "10.0.0.10", "10.0.0.20", [], id="no-networks-with-redis"),
        pytest.param(
            [NET4], "10.0.0.10", None, [NET4, "10.0.0.10/32"], id="ipv4-database"
        ),
        pytest.param(
            [NET4], "2001:db8:1::10", None, [NET4, "2001:db8:1::10/128"], id="ipv6-db"
        ),
        pytest.param(
            [NET4],
            "2001:0DB8:0001:0000::0010",
            None,
            [NET4, "2001:db8:1::10/128"],
            id="ipv6-database-in-its-short-form",
        ),
        pytest.param([NET4], "192.0.2.10", None, [NET4], id="ipv4-covered"),
        pytest.param([NET6], "2001:db8::10", None, [NET6], id="ipv6-covered"),
        pytest.param(
            ["10.0.0.10/32"], "10.0.0.10", None, ["10.0.0.10/32"], id="host-listed"
        ),
        pytest.param(
            [NET6], "10.0.0.10", None, [NET6, "10.0.0.10/32"], id="v4-not-in-v6"
        ),
        pytest.param([NET4], "127.0.0.1", None, [NET4], id="loopback-v4"),
        pytest.param([NET4], "127.0.1.1", None, [NET4], id="loopback-v4-any"),
        pytest.param([NET4], "::1", None, [NET4], id="loopback-v6"),
        pytest.param([NET4], "db1.example.net", None, [NET4], id="database-name"),
        pytest.param(
            [NET4], "db1", "cache1.example.net", [NET4], id="database-and-redis-names"
        ),
        pytest.param(
            [NET4],
            "10.0.0.10",
            "10.0.0.20",
            [NET4, "10.0.0.10/32", "10.0.0.20/32"],
            id="database-then-redis",
        ),
        pytest.param(
            [NET4],
            "db1.example.net",
            "2001:db8:2::20",
            [NET4, "2001:db8:2::20/128"],
            id="redis-by-address-database-by-name",
        ),
        pytest.param(
            [NET4],
            "10.0.0.10",
            "10.0.0.10",
            [NET4, "10.0.0.10/32"],
            id="redis-on-the-database-host",
        ),
        pytest.param(
            [NET4],
            "10.0.0.10",
            "192.0.2.20",
            [NET4, "10.0.0.10/32"],
            id="redis-covered",
        ),
        pytest.param(
            [NET4, NET6, NET4], "192.0.2.10", None, [NET4, NET6], id="duplicate-network"
        ),
        pytest.param(
            [NET6, "2001:DB8:0::/64"],
            "2001:db8::10",
            None,
            [NET6],
            id="duplicate-network-spelled-otherwise",
        ),
        pytest.param(
            ["198.51.100.0/24", NET6, NET4],
            "10.0.0.10",
            None,
            ["198.51.100.0/24", NET6, NET4, "10.0.0.10/32"],
            id="inventory-order-kept",
        ),
    ],
)
def test_address_filter(
    networks: list[str], database: str, redis: str | None, expected: list[str]
) -> None:
    assert allow_list(networks, database, redis) == expected


def test_address_filter_renders_the_same_unit_every_time() -> None:
    data = BASE | {
        "gateway_allowed_networks": [NET6, NET4, NET6],
        "gateway_limits": {"redis_host": "10.0.0.20", "redis_password_secret": "r"},
    }

    def unit() -> str:
        spec = gateway_from_host_data("gw1", data)
        filtered = spec.model_copy(update={"allowed_networks": address_filter(spec)})
        return render_gateway_unit(filtered, GatewayLayout())

    (unit_text,) = {unit() for _ in range(3)}
    allow = f"IPAddressAllow=localhost {NET6} {NET4} 10.0.0.10/32 10.0.0.20/32"
    assert allow in unit_text.splitlines()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"gateway_listen": "eth0"}, "listen: 'eth0' is not an address"),
        ({"gateway_lisen": "10.0.0.1"}, "did you mean gateway_listen?"),
        ({"gateway_allowed_networks": ["10.0.0.1/24"]}, "not a network in CIDR"),
        ({"gateway_api": {"allowed_roles": ["pg_read_all_data"]}}, "not a plain"),
        ({"gateway_limits": {"per_address": "lots"}}, "not a rate such as"),
        ({"gateway_database": {"host": "x"}}, "database.dbname: is required"),
        ({"gateway_workers": 0}, "workers: Input should be greater than or equal"),
    ],
)
def test_bad_gateway_data_is_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        gateway_from_host_data("gw1", BASE | data)
    assert str(caught.value).startswith("host gw1: ")
    assert fragment in str(caught.value)


@pytest.fixture
def key_files(tmp_path: Path) -> dict[str, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    paths = {"public": tmp_path / "idp.pub", "private": tmp_path / "idp.key"}
    paths["public"].write_bytes(public_pem)
    paths["private"].write_bytes(private_pem)
    tls.init_ca(tmp_path / "ca", "test CA")
    paths["ca"] = tmp_path / "ca" / "ca.crt"
    return paths


def test_jwt_keys_from_an_identity_provider_replace_the_secret(
    key_files: dict[str, Path],
) -> None:
    jwks = config(
        gateway_jwt={
            "jwks_url": "https://idp.example/.well-known/jwks.json",
            "jwks_ca_file": str(key_files["ca"]),
            "audience": "orders-api",
            "issuer": "https://idp.example/",
        }
    )["jwt"]
    assert jwks == {
        "role_claim": ".role",
        "jwks_url": "https://idp.example/.well-known/jwks.json",
        "jwks_ca_file": "/etc/pgfortress-gateway/jwks-ca.crt",
        "audience": "orders-api",
        "issuer": "https://idp.example/",
    }
    pem = config(gateway_jwt={"public_key_file": str(key_files["public"])})["jwt"]
    assert pem == {
        "role_claim": ".role",
        "public_key_file": "/etc/pgfortress-gateway/jwt-public.pem",
    }
    assert config()["jwt"]["secret_file"] == "/etc/pgfortress-gateway/jwt-secret"


@pytest.mark.parametrize(
    ("jwt", "fragment"),
    [
        ({"jwks_url": "http://idp.example/jwks"}, "is not an https:// URL"),
        ({"jwks_url": "https://u:p@idp.example/jwks"}, "without credentials"),
        ({"jwks_url": "https://idp/j", "public_key_file": "@public"}, "not both"),
        ({"jwks_ca_file": "@ca"}, "jwks_ca_file goes with jwks_url"),
        ({"public_key_file": "@private"}, "is not a PEM public key"),
        ({"public_key_file": "/nonexistent/idp.pub"}, "cannot be read"),
        ({"jwks_url": "https://idp/j", "jwks_ca_file": "@public"}, "not a PEM cert"),
        ({"audience": ""}, "jwt.audience"),
        ({"algorithm": "HS256"}, "jwt.algorithm: Extra inputs are not permitted"),
    ],
)
def test_bad_jwt_sources_are_refused(
    key_files: dict[str, Path], jwt: dict[str, str], fragment: str
) -> None:
    resolved = {
        key: str(key_files[value[1:]]) if value.startswith("@") else value
        for key, value in jwt.items()
    }
    with pytest.raises(SpecError) as caught:
        gateway_from_host_data("gw1", BASE | {"gateway_jwt": resolved})
    assert fragment in str(caught.value)
    assert "PRIVATE KEY-----" not in str(caught.value)  # no key material echoed


def test_only_wheels_the_host_lacks_or_holds_otherwise_are_uploaded() -> None:
    local = {"a.whl": "aa", "b.whl": "bb", "c.whl": "cc", "d.whl": "dd"}
    listing = "aa 644 a.whl\nbX 644 b.whl\ncc 600 c.whl\nzz 644 old.whl\n"
    assert wheels_to_upload(local, listing) == ["b.whl", "c.whl", "d.whl"]
    assert wheels_to_upload(local, "") == sorted(local)


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        ("3.11.2", None),
        ("3.13.5", None),
        ("3.14.0", None),
        ("3.9.2", "the gateway needs 3.11 or later"),
        ("", "not a version"),
        ("Python 3.11.2", "not a version"),
    ],
)
def test_the_gateway_runs_on_the_hosts_python_from_3_11(
    version: str, fragment: str | None
) -> None:
    problem = host_python_problem("gw1", version)
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith("host gw1: python3")
        assert fragment in problem


def test_wheels_travel_as_one_tar_that_unpacks_to_what_the_listing_wants(
    tmp_path: Path,
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    wheels = []
    for name, data in [("a-1-py3-none-any.whl", b"zip a"), ("b-2.whl", b"zip b" * 999)]:
        (here / name).write_bytes(data)
        wheels.append(here / name)
    archive = wheel_archive(wheels)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [w.name for w in wheels]
    assert {(m.mode, m.uid, m.gid, m.uname) for m in members} == {(0o644, 0, 0, "root")}
    # Unpacked as the host does (GNU tar), the listing then wants nothing.
    there = tmp_path / "there"
    there.mkdir()
    (tmp_path / "w.tar").write_bytes(archive)
    subprocess.run(
        [
            "tar",
            "--extract",
            "--same-permissions",
            f"--file={tmp_path / 'w.tar'}",
            f"--directory={there}",
        ],
        check=True,
    )
    listing = subprocess.run(
        ["sh", "-c", WHEEL_LISTING],
        cwd=there,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    local = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    assert wheels_to_upload(local, listing) == []
