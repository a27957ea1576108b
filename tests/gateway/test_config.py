"""Loading the gateway's TOML configuration and refusing unusable ones."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pgfortress_gateway.config
import pytest
from pgfortress_gateway.config import (
    ConfigError,
    GatewayConfig,
    config_from_mapping,
    load_config,
    parse_claim_path,
    read_secret_file,
)

PASSWORD = "correct horse battery staple"
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    contents = {
        "password": (PASSWORD + "\n", 0o640),
        "secret": (SECRET + "\n", 0o600),
        "short": ("too short\n", 0o600),
        "ca.crt": ("-----BEGIN CERTIFICATE-----\n", 0o644),
        "tls.crt": ("-----BEGIN CERTIFICATE-----\n", 0o644),
        "tls.key": ("-----BEGIN PRIVATE KEY-----\n", 0o640),
        "open": ("readable by anyone\n", 0o644),
        "jwks.json": ('{"keys": []}', 0o644),
    }
    paths = {}
    for name, (text, mode) in contents.items():
        path = tmp_path / name
        path.write_text(text)
        path.chmod(mode)
        paths[name] = path
    return paths


def base(files: dict[str, Path]) -> dict[str, Any]:
    return {
        "database": {
            "host": "db1.lab.example",
            "dbname": "app",
            "user": "authenticator",
            "password_file": str(files["password"]),
            "sslrootcert": str(files["ca.crt"]),
        },
        "api": {"schema": "api", "anonymous_role": "web_anon"},
        "jwt": {"secret_file": str(files["secret"])},
    }


def test_minimal_configuration_gets_safe_defaults(files: dict[str, Path]) -> None:
    config = config_from_mapping(base(files))

    assert config.database.sslmode == "verify-full"
    assert config.database.password == PASSWORD
    assert config.jwt.secret == SECRET.encode()
    assert (config.api.db_schema, config.api.max_rows) == ("api", 1000)
    assert config.api.max_body_bytes == 1024 * 1024
    assert (config.jwt.leeway, config.jwt.max_token_bytes) == (30, 8192)
    assert config.limits.storage_uri == "memory://"
    assert config.server.listen_host == "127.0.0.1"
    assert config.cors.allowed_origins == ()


def test_secrets_never_show_in_repr_or_dump(files: dict[str, Path]) -> None:
    config = config_from_mapping(base(files))

    for text in (repr(config), str(config), str(config.model_dump())):
        assert PASSWORD not in text
        assert SECRET not in text


def test_full_example_file_loads(files: dict[str, Path], tmp_path: Path) -> None:
    toml = f"""
[database]
host = "db1.lab.example"
port = 5432
dbname = "app"
user = "authenticator"
password_file = "{files["password"]}"
sslrootcert = "{files["ca.crt"]}"
pool_min_size = 2
pool_max_size = 20
connect_timeout = 5

[api]
schema = "api"
anonymous_role = "web_anon"
allowed_roles = ["web_anon", "web_user", "billing_app"]
max_rows = 500
statement_timeout_ms = 5000

[jwt]
role_claim = ".app_metadata.role"
secret_file = "{files["secret"]}"
audience = "pgfortress"
issuer = "https://id.example"

[[api_keys]]
name = "billing"
sha256 = "{"ab" * 32}"
role = "billing_app"

[cors]
allowed_origins = ["https://app.example", "http://localhost:5173"]
allow_credentials = true

[limits]
per_subject = "10/second;600/minute"
per_address = "120/minute"
storage_uri = "redis://10.0.0.5:6379"

[server]
listen_host = "0.0.0.0"
listen_port = 8443
tls_cert_file = "{files["tls.crt"]}"
tls_key_file = "{files["tls.key"]}"
metrics_host = "10.0.0.7"
metrics_port = 9090
"""
    path = tmp_path / "gateway.toml"
    path.write_text(toml)

    config = load_config(path)

    assert isinstance(config, GatewayConfig)
    assert config.jwt.claim_path == ("app_metadata", "role")
    assert config.api_keys[0].role == "billing_app"
    assert config.cors.allowed_origins == (
        "https://app.example",
        "http://localhost:5173",
    )
    assert config.server.listen_port == 8443


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *sections, key = dotted.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    if value is _DELETE:
        del data[key]
    else:
        data[key] = value


_DELETE = object()

INVALID: list[tuple[str, Any, str]] = [
    ("database.host", _DELETE, "database.host: required key is missing"),
    ("database.pasword", "x", "database.pasword: unknown key"),
    ("database.sslmode", "require", "database.sslmode"),
    ("database.port", 70000, "database.port"),
    ("database.user", "Auth Role", "database.user: 'Auth Role' is not a plain role"),
    ("database.password_file", "password", "relative; give the absolute path"),
    ("database.password_file", "@open", "password_file: "),
    ("database.password_file", "@open", "chmod 0640"),
    ("database.password_file", "/nonexistent/pw", "does not exist"),
    ("database.pool_min_size", 50, "pool_min_size is larger"),
    ("api.schema", "pg_catalog", "system schema"),
    ("api.anonymous_role", "pg_monitor", "not starting with pg_"),
    ("api.anonymous_role", 'anon"; drop', "not a plain role name"),
    ("api.max_rows", 0, "api.max_rows"),
    ("jwt.secret_file", "@short", "HS256 needs at least 32"),
    ("jwt.secret_file", "@open", "chmod 0640"),
    ("jwt.secret_file", _DELETE, "exactly one of"),
    ("jwt.jwks_file", "@jwks.json", "exactly one of"),
    ("jwt.role_claim", "role", "not a claim path"),
    ("jwt.role_claim", ".role.", "not a claim path"),
    ("jwt.leeway", 3600, "jwt.leeway"),
    ("jwt.algorithms", ["none"], "jwt.algorithms: unknown key"),
    ("cors.allowed_origins", ["*"], ""),
    ("cors.allowed_origins", ["https://app.example/"], "not an origin"),
    ("cors.allowed_origins", ["null"], "not an origin"),
    ("cors.allowed_origins", ["app.example"], "not an origin"),
    ("limits.per_subject", "lots", "not a rate"),
    ("limits.storage_uri", "mongodb://x", "not a supported store"),
    ("server.listen_host", "0.0.0.0", "plain HTTP on 0.0.0.0"),
    ("server.listen_host", "gateway.example", "not an IP address"),
    ("server.metrics_host", "::", "not every interface"),
    ("server.tls_cert_file", "@tls.crt", "both tls_cert_file and tls_key_file"),
    ("server.metrics_port", 3000, "are the same"),
    ("server.workers", 0, "server.workers"),
    ("server.request_timeout_seconds", 0, "server.request_timeout_seconds"),
    ("server.idle_timeout_seconds", 0, "server.idle_timeout_seconds"),
    ("server.max_connections", 0, "server.max_connections"),
]


@pytest.mark.parametrize(
    ("key", "value", "message"), INVALID, ids=[f"{k}={v}" for k, v, _ in INVALID]
)
def test_invalid_setting_is_named_with_its_fix(
    files: dict[str, Path], key: str, value: Any, message: str
) -> None:
    data = base(files)
    if isinstance(value, str) and value.startswith("@"):
        value = str(files[value[1:]])
    _set(data, key, value)
    if not message:  # "*" alone is fine; the next case adds credentials
        config_from_mapping(data)
        return

    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data)

    assert message in str(caught.value)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "change",
    [
        {"cors": {"allowed_origins": ["*"], "allow_credentials": True}},
        {"cors": {"allowed_origins": ["*", "https://app.example"]}},
    ],
    ids=["wildcard-with-credentials", "wildcard-with-others"],
)
def test_cors_wildcard_is_refused_with_credentials(
    files: dict[str, Path], change: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match="must stand alone"):
        config_from_mapping(base(files) | change)


def _key(name: str, digest: str, role: str) -> dict[str, str]:
    return {"name": name, "sha256": digest, "role": role}


@pytest.mark.parametrize(
    ("keys", "allowed", "message"),
    [
        ([_key("a", "zz" * 32, "app")], [], "api_keys.0.sha256"),
        ([_key("a", "ab" * 32, "app"), _key("a", "cd" * 32, "app")], [], "unique"),
        ([_key("a", "ab" * 32, "app"), _key("b", "AB" * 32, "app")], [], "unique"),
        ([_key("a", "ab" * 32, "app")], ["web_anon"], "roles app are used"),
        ([], ["web_user"], "roles web_anon are used"),
    ],
    ids=["not-hex", "same-name", "same-hash", "key-role", "anonymous-role"],
)
def test_api_keys_and_allowed_roles_must_agree(
    files: dict[str, Path],
    keys: list[dict[str, str]],
    allowed: list[str],
    message: str,
) -> None:
    data = copy.deepcopy(base(files))
    data["api_keys"] = keys
    data["api"]["allowed_roles"] = allowed

    with pytest.raises(ConfigError, match=message):
        config_from_mapping(data)


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        (".role", ("role",)),
        (".app_metadata.role", ("app_metadata", "role")),
        ('."https://example.com/claims".role', ("https://example.com/claims", "role")),
        (".a-b.c_d", ("a-b", "c_d")),
    ],
)
def test_claim_path_is_split_into_keys(text: str, keys: tuple[str, ...]) -> None:
    assert parse_claim_path(text) == keys


@pytest.mark.parametrize(
    "text", ["", ".", "role", "..role", ".role.", '."open', ".a b", '.""', ".1role"]
)
def test_malformed_claim_path_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a claim path"):
        parse_claim_path(text)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o440])
def test_secret_file_modes_that_are_accepted(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(mode)

    assert read_secret_file(path) == b"x"


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604, 0o700, 0o666])
def test_secret_file_modes_that_are_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(mode)

    with pytest.raises(ValueError, match=f"mode {mode:04o}"):
        read_secret_file(path)


def test_secret_file_must_be_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a regular file"):
        read_secret_file(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file"), ("[database\n", "not valid TOML")],
    ids=["missing", "broken"],
)
def test_unreadable_file_is_reported(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "gateway.toml"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_models_are_frozen(files: dict[str, Path]) -> None:
    config = config_from_mapping(base(files))

    with pytest.raises(ValueError, match="frozen"):
        config.api.max_rows = 10**6


def test_public_api_is_pinned() -> None:
    assert sorted(pgfortress_gateway.config.__all__) == [
        "ApiConfig",
        "ApiKeyConfig",
        "ConfigError",
        "CorsConfig",
        "DatabaseConfig",
        "GatewayConfig",
        "JwtConfig",
        "LimitsConfig",
        "ServerConfig",
        "check_role_name",
        "config_from_mapping",
        "load_config",
        "parse_claim_path",
        "read_secret_file",
    ]


def test_workers_share_counters_in_redis(files: dict[str, Path]) -> None:
    data = base(files)
    data["server"] = {"workers": 4}
    data["limits"] = {"storage_uri": "redis://10.0.0.5:6379"}
    assert config_from_mapping(data).server.workers == 4


def test_workers_count_in_shared_memory_without_redis(files: dict[str, Path]) -> None:
    data = base(files)
    data["server"] = {"workers": 2}
    config = config_from_mapping(data)
    assert (config.server.workers, config.limits.storage_uri) == (2, "memory://")
