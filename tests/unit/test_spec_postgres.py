"""Inventory validation: every bad input names the host, the field and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pgfortress.errors import SpecError, TLSError
from pgfortress.spec import from_host_data
from pgfortress.spec.postgres import TlsSpec, check_settings_for
from pgfortress.tls import host_certificate, init_ca, load_ca

BASE: dict[str, Any] = {
    "postgres_listen": ["eth0"],
    "postgres_tls": {"ca_dir": "/srv/ca"},
}


def rule(**overrides: Any) -> dict[str, Any]:
    return {"databases": "app", "users": "app_rw", "address": "10.0.0.0/24"} | overrides


def with_data(**data: Any) -> dict[str, Any]:
    return BASE | data


def test_minimal_inventory_gets_hardened_defaults() -> None:
    spec = from_host_data("db1", BASE)
    assert spec.socket.mode == "0770"
    assert spec.socket.group == "pgsocket"
    assert spec.tls.min_protocol == "TLSv1.2"
    assert spec.logging.statement == "ddl"
    assert spec.hba == []


def test_names_may_be_written_as_one_comma_separated_string() -> None:
    spec = from_host_data("db1", with_data(postgres_hba=[rule(users="a, +b")]))
    assert spec.hba[0].users == ["a", "+b"]


BAD_INPUTS = [
    pytest.param(
        with_data(postgres_hba=[rule(address="10.0.0.300/24")]),
        ["postgres_hba[0]", "'10.0.0.300/24' is not an IPv4 or IPv6 network"],
        id="malformed-network",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address="10.0.0.7/24")]),
        ["postgres_hba[0]", "did you mean 10.0.0.0/24"],
        id="host-bits-set",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address="2001:db8::1/64")]),
        ["postgres_hba[0]", "host bits set", "2001:db8::/64"],
        id="ipv6-host-bits",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="scram")]),
        ["postgres_hba[0]", "'scram' is not a PostgreSQL authentication method"],
        id="unknown-method",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="trust")]),
        ["postgres_hba[0]", "'trust' over TCP", "scram-sha-256"],
        id="trust-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="md5")]),
        ["'md5' over TCP"],
        id="md5-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(method="password")]),
        ["'password' over TCP"],
        id="password-over-tcp",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="host")]),
        ["type: 'host' accepts connections without TLS", "use hostssl"],
        id="accepting-rule-without-tls",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="local", method="trust", address=None)]),
        ["'trust' is not allowed on the local socket"],
        id="trust-on-socket",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(type="local")]),
        ["takes no address"],
        id="local-with-address",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address=None)]),
        ["needs a network"],
        id="tcp-without-address",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(options={"clientcert": "1"})]),
        ["clientcert='1' is not accepted", "clientcert=verify-full"],
        id="old-clientcert-1",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(options={"ldapserver": "x"})]),
        ["'ldapserver' is not an option of method 'scram-sha-256'"],
        id="option-of-other-method",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(users="app rw")]),
        ["'app rw' is not a plain name"],
        id="name-with-space",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(databases=[])]),
        ["postgres_hba[0].databases", "at least 1"],
        id="no-database",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(extra="x")]),
        ["postgres_hba[0].extra", "unknown key", "databases"],
        id="unknown-rule-field",
    ),
    pytest.param(
        with_data(postgres_listen=["10.0.0.1", "*"]),
        ["postgres_listen", "'*' already means every address"],
        id="wildcard-with-others",
    ),
    pytest.param(
        with_data(postgres_listen=["eth0; rm -rf /"]),
        ["postgres_listen", "neither an IP address nor an interface name"],
        id="listen-garbage",
    ),
    pytest.param(
        with_data(postgres_listen=[]),
        ["postgres_listen", "at least 1"],
        id="listen-empty",
    ),
    pytest.param(
        {"postgres_listen": ["eth0"]},
        ["postgres_tls: is required"],
        id="missing-tls",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "cert_file": "/srv/c.pem"}),
        ["cert_file and key_file go together"],
        id="cert-without-key",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "min_protocol": "TLSv1"}),
        ["postgres_tls.min_protocol", "'TLSv1.2' or 'TLSv1.3'"],
        id="old-tls",
    ),
    pytest.param(
        with_data(postgres_socket={"mode": "0777"}),
        ["postgres_socket.mode", "'0700' or '0770'"],
        id="world-writable-socket",
    ),
    pytest.param(
        with_data(postgres_socket={"directory": "run/pg"}),
        ["postgres_socket.directory", "absolute path"],
        id="relative-socket-dir",
    ),
    pytest.param(
        with_data(postgres_socket={"group": "Root Group"}),
        ["postgres_socket.group", "not a valid Unix group name"],
        id="bad-group",
    ),
    pytest.param(
        with_data(postgres_settings={"listen_addresses": "*"}),
        ["postgres_settings", "managed by pgfortress", "postgres_listen"],
        id="override-managed-setting",
    ),
    pytest.param(
        with_data(postgres_settings={"ssl_ciphers": "ALL:aNULL"}),
        ["postgres_settings", "'ssl_ciphers' is managed", "postgres_tls"],
        id="weaken-tls-through-settings",
    ),
    pytest.param(
        with_data(postgres_settings={"hba_file": "/tmp/open.conf"}),
        ["postgres_settings", "owns PostgreSQL's configuration files"],
        id="move-hba-file",
    ),
    pytest.param(
        with_data(postgres_settings={"password_encryption": "md5"}),
        ["always uses scram-sha-256"],
        id="md5-password-encryption",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "ca_dri": "/x"}),
        ["postgres_tls.ca_dri", "unknown key", "ca_dir"],
        id="nested-typo",
    ),
    pytest.param(
        with_data(postgres_listen="eth0"),
        ["postgres_listen", "write a list"],
        id="listen-not-a-list",
    ),
    pytest.param(
        with_data(postgres_listen=["0.0.0.0"]),
        ["postgres_listen", "write ['*']"],
        id="listen-any-address",
    ),
    pytest.param(
        with_data(postgres_settings={"work mem": "4MB"}),
        ["'work mem' is not a PostgreSQL setting name"],
        id="bad-setting-name",
    ),
    pytest.param(
        with_data(postgres_logging={"line_prefix": "%m "}),
        ["postgres_logging.line_prefix", "lacks %p, %u, %d, %r"],
        id="audit-prefix-incomplete",
    ),
    pytest.param(
        with_data(postgres_port=80),
        ["postgres_port", "greater than or equal to 1024"],
        id="privileged-port",
    ),
    pytest.param(
        with_data(postgres_probe_role={"name": "probe"}),
        ["probe_role needs pgfortress_secrets_dir"],
        id="probe-without-secrets-dir",
    ),
    pytest.param(
        with_data(postgres_database_roles="specs/lab.yml"),
        ["database_roles needs pgfortress_secrets_dir"],
        id="database-roles-without-secrets-dir",
    ),
    pytest.param(
        with_data(postgres_lisen=["eth0"]),
        ["postgres_lisen: unknown key; did you mean postgres_listen?"],
        id="typo-in-key",
    ),
    pytest.param(
        with_data(postgres_tls={"ca_dir": "/srv/ca", "dns_names": ["db_1..x"]}),
        ["postgres_tls.dns_names", "not a DNS name"],
        id="bad-dns-name",
    ),
    # "IPv6 written as IPv4": an IPv4 address given an IPv6-sized prefix, and an
    # IPv4 network written in IPv6's mapped form, which never matches a client.
    pytest.param(
        with_data(postgres_hba=[rule(address="10.0.0.1/64")]),
        ["postgres_hba[0]", "'10.0.0.1/64'", "IPv6 prefix length", "10.0.0.1/32"],
        id="ipv6-prefix-length-on-an-ipv4-address",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(address="::ffff:10.0.0.0/120")]),
        [
            "postgres_hba[0]",
            "'::ffff:10.0.0.0/120'",
            "never match",
            "write 10.0.0.0/24",
        ],
        id="ipv4-network-written-as-ipv4-mapped-ipv6",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(), rule(comment="again")]),
        [
            "postgres_hba",
            "rule [1] (hostssl app app_rw 10.0.0.0/24",
            "repeats rule [0]",
            "remove one of them",
        ],
        id="duplicate-hba-rule",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(databases="a, b"), rule(databases=["b", "a"])]),
        ["postgres_hba", "rule [1]", "repeats rule [0]"],
        id="duplicate-hba-rule-names-in-another-order",
    ),
    pytest.param(
        with_data(
            postgres_hba=[
                rule(
                    databases="all",
                    users="all",
                    address="10.0.0.0/16",
                    method="reject",
                ),
                rule(users="alice"),
            ]
        ),
        [
            "postgres_hba",
            "rule [1] (hostssl app alice 10.0.0.0/24",
            "never be used",
            "rule [0] (hostssl all all 10.0.0.0/16 reject)",
            "move rule [1] above",
        ],
        id="rule-shadowed-by-an-earlier-broader-reject",
    ),
    pytest.param(
        with_data(
            postgres_hba=[
                rule(users="all", address="10.0.0.0/16"),
                rule(users="alice", method="cert"),
            ]
        ),
        [
            "rule [1] (hostssl app alice 10.0.0.0/24 cert) can never be used",
            "rule [0] (hostssl app all 10.0.0.0/16 scram-sha-256)",
        ],
        id="rule-shadowed-by-an-earlier-broader-accepting-rule",
    ),
    pytest.param(
        with_data(
            postgres_hba=[
                rule(type="host", users="all", method="reject"),
                rule(),
            ]
        ),
        [
            "rule [1] (hostssl app app_rw 10.0.0.0/24 scram-sha-256) can never",
            "rule [0] (host app all 10.0.0.0/24 reject)",
        ],
        id="hostssl-rule-shadowed-by-a-host-reject",
    ),
    pytest.param(
        with_data(
            postgres_hba=[
                rule(type="local", databases="all", users="all", address=None)
                | {"method": "reject"},
                rule(type="local", users="alice", address=None, method="peer"),
            ]
        ),
        [
            "rule [1] (local app alice peer) can never be used",
            "rule [0] (local all all reject)",
        ],
        id="socket-rule-shadowed-by-local-all-all-reject",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(users="postgres, app_rw")]),
        [
            "postgres_hba",
            "rule [0]",
            "'postgres' is the administrator",
            "rejects postgres over TCP",
            "remove 'postgres' from users",
        ],
        id="admin-user-over-tcp-is-unreachable",
    ),
    pytest.param(
        with_data(
            postgres_hba=[
                rule(type="local", users="postgres", address=None, method="reject")
            ]
        ),
        [
            "rule [0] (local app postgres reject)",
            "local all postgres peer",
            "remove 'postgres' from users",
        ],
        id="admin-socket-access-cannot-be-taken-away",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(acknowledge=["wide-network"])]),
        ["postgres_hba", "rule [0]", "acknowledge: 'wide-network'", "remove it"],
        id="acknowledgement-of-a-warning-the-rule-does-not-raise",
    ),
    pytest.param(
        with_data(postgres_hba=[rule(acknowledge=["wide"])]),
        ["postgres_hba[0].acknowledge[0]", "'wide-network' or 'all-all'"],
        id="unknown-acknowledgement",
    ),
    pytest.param(
        with_data(postgres_settings={"work_mem": "64 parsecs"}),
        [
            "postgres_settings",
            "work_mem: '64 parsecs'",
            "'parsecs'",
            "use B, kB, MB, GB, TB",
            "'64MB'",
        ],
        id="memory-setting-in-parsecs",
    ),
    pytest.param(
        with_data(postgres_settings={"statement_timeout": "5 fortnights"}),
        [
            "postgres_settings",
            "statement_timeout: '5 fortnights'",
            "use us, ms, s, min, h, d",
            "'30s'",
        ],
        id="time-setting-in-fortnights",
    ),
    pytest.param(
        with_data(postgres_settings={"lock_timeout": "10MB"}),
        [
            "postgres_settings",
            "lock_timeout: '10MB'",
            "'MB', a memory unit",
            "use us, ms, s, min, h, d",
        ],
        id="memory-unit-on-a-time-setting",
    ),
    pytest.param(
        with_data(postgres_settings={"shared_buffers": "2h"}),
        ["shared_buffers: '2h'", "'h', a time unit", "use B, kB, MB, GB, TB"],
        id="time-unit-on-a-memory-setting",
    ),
    pytest.param(
        with_data(postgres_settings={"work_mem": "8 MiB"}),
        ["work_mem: '8 MiB'", "'MiB'", "case-sensitive", "use B, kB, MB, GB, TB"],
        id="iec-unit-on-a-memory-setting",
    ),
    pytest.param(
        with_data(postgres_settings={"maintenance_work_mem": "lots"}),
        ["maintenance_work_mem: 'lots' is not a memory quantity", "'64MB'"],
        id="memory-setting-without-a-number",
    ),
]


@pytest.mark.parametrize(("data", "expected"), BAD_INPUTS)
def test_bad_input_is_refused_with_host_field_and_fix(
    data: dict[str, Any], expected: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        from_host_data("db7", data)
    message = str(caught.value)
    assert message.startswith("host db7: ")
    for fragment in expected:
        assert fragment in message


def test_spec_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="postgres_tls"):
        from_host_data("db1", {"postgres_listen": ["eth0"]})


@pytest.mark.parametrize(
    "settings",
    [
        {"work_mem": "1.5 GB", "maintenance_work_mem": 65536},
        {"statement_timeout": 0, "lock_timeout": "-1", "deadlock_timeout": "250ms"},
        {"idle_session_timeout": "2 min", "shared_buffers": "128MB"},
        {"max_connections": 50, "jit": False},
    ],
)
def test_quantities_with_valid_units_are_accepted(
    settings: dict[str, str | int | bool],
) -> None:
    assert from_host_data("db1", with_data(postgres_settings=settings)).settings


@pytest.mark.parametrize(
    ("version", "fragment"),
    [
        (
            12,
            "12 is not a PostgreSQL major version pgfortress supports; write 13 to 18",
        ),
        (19, "19 is not a PostgreSQL major version pgfortress supports"),
        ("seventeen", "write a whole number"),
    ],
)
def test_an_unsupported_postgres_version_is_refused(
    version: object, fragment: str
) -> None:
    with pytest.raises(SpecError) as caught:
        from_host_data("db1", with_data(postgres_version=version))
    assert str(caught.value).startswith("host db1: postgres_version: ")
    assert fragment in str(caught.value)


VERSIONED_SETTINGS = [
    # (postgres_version, setting) → fragments of the error, or None if accepted
    pytest.param(15, "db_user_namespace", None, id="15-db_user_namespace"),
    pytest.param(
        17,
        "db_user_namespace",
        ["postgres_settings", "PostgreSQL 17 no longer has", "removed in 17"],
        id="17-db_user_namespace",
    ),
    pytest.param(15, "old_snapshot_threshold", None, id="15-old_snapshot_threshold"),
    pytest.param(
        17, "old_snapshot_threshold", ["removed in 17"], id="17-old_snapshot_threshold"
    ),
    pytest.param(15, "promote_trigger_file", None, id="15-promote_trigger_file"),
    pytest.param(
        16, "promote_trigger_file", ["removed in 16"], id="16-promote_trigger_file"
    ),
    pytest.param(
        17,
        "vacuum_defer_cleanup_age",
        ["removed in 16", "hot_standby_feedback"],
        id="17-vacuum_defer_cleanup_age",
    ),
    pytest.param(
        17,
        "force_parallel_mode",
        ["renamed it debug_parallel_query", "write debug_parallel_query"],
        id="17-force_parallel_mode",
    ),
    pytest.param(17, "debug_parallel_query", None, id="17-debug_parallel_query"),
    pytest.param(
        15,
        "debug_parallel_query",
        ["PostgreSQL 15 does not have this setting yet", "added in 16"],
        id="15-debug_parallel_query",
    ),
    pytest.param(
        15,
        "transaction_timeout",
        ["postgres_settings", "added in 17", "remove it"],
        id="15-transaction_timeout",
    ),
    pytest.param(17, "transaction_timeout", None, id="17-transaction_timeout"),
    pytest.param(15, "work_mem", None, id="15-work_mem"),
    pytest.param(17, "work_mem", None, id="17-work_mem"),
]


@pytest.mark.parametrize(("version", "name", "fragments"), VERSIONED_SETTINGS)
def test_settings_are_checked_against_the_postgres_version(
    version: int, name: str, fragments: list[str] | None
) -> None:
    data = with_data(postgres_version=version, postgres_settings={name: "0"})
    if fragments is None:
        assert from_host_data("db1", data).settings == {name: "0"}
        return
    with pytest.raises(SpecError) as caught:
        from_host_data("db1", data)
    assert str(caught.value).startswith(f"host db1: postgres_settings: {name}: ")
    for fragment in fragments:
        assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("major", "refused"), [(15, "transaction_timeout"), (17, "db_user_namespace")]
)
def test_settings_are_checked_against_the_major_found_on_the_host(
    major: int, refused: str
) -> None:
    settings = {"transaction_timeout": "1min", "db_user_namespace": False}
    spec = from_host_data("db1", with_data(postgres_settings=settings))
    with pytest.raises(SpecError, match=f"host db1: postgres_settings: {refused}: "):
        check_settings_for(spec, major)
    check_settings_for(from_host_data("db1", BASE), major)


def test_a_narrow_rule_before_a_broader_one_is_accepted() -> None:
    policy = [
        rule(users="alice", method="cert"),
        rule(users="all", address="10.0.0.0/16"),
        rule(databases="all", users="all", address="10.0.0.0/8", method="reject"),
    ]
    assert len(from_host_data("db1", with_data(postgres_hba=policy)).hba) == 3


# --- operator certificates, checked on the control machine -------------------
# tls.host_certificate reads only local files (the CA and the operator's pair);
# no host is contacted. Messages name the host, the postgres_tls key, the file
# or value at fault and the fix.

HOST_IPS = ["10.0.0.5"]


def _write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def _ca_dir(tmp_path: Path, *, expired: bool = False) -> Path:
    directory = tmp_path / "ca"
    init_ca(directory, "test CA")
    if expired:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old CA")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400))
            .not_valid_after(now - timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .sign(key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        _write(directory / "ca.crt", cert.public_bytes(pem), 0o644)
        key_bytes = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(directory / "ca.key", key_bytes, 0o600)
    return directory


def _operator_pair(
    tmp_path: Path, ips: list[str], *, foreign_key: bool = False
) -> tuple[Path, Path]:
    ca = load_ca(_ca_dir(tmp_path / "theirs"))
    issued = ca.issue_server(common_name="db7", dns_names=["db7"], ip_addresses=ips)
    key = issued.key_pem.reveal().encode()
    if foreign_key:
        other = ca.issue_server(common_name="x", dns_names=["x"], ip_addresses=[])
        key = other.key_pem.reveal().encode()
    cert_file = _write(tmp_path / "db7.crt", issued.chain_pem, 0o644)
    return cert_file, _write(tmp_path / "db7.key", key, 0o600)


def _tls_case(tmp_path: Path, case: str) -> TlsSpec:
    (tmp_path / "theirs").mkdir()
    if case == "expired-ca":
        return TlsSpec(ca_dir=_ca_dir(tmp_path, expired=True))
    ca_dir = _ca_dir(tmp_path)
    if case == "certificate-does-not-name-the-host-address":
        cert_file, key_file = _operator_pair(tmp_path, ["10.0.0.9"])
    else:
        cert_file, key_file = _operator_pair(tmp_path, HOST_IPS, foreign_key=True)
    return TlsSpec(ca_dir=ca_dir, cert_file=cert_file, key_file=key_file)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param(
            "certificate-does-not-name-the-host-address",
            [
                "postgres_tls.cert_file",
                "db7.crt",
                "does not name 10.0.0.5",
                "reissue it",
            ],
            id="certificate-does-not-cover-the-host-address",
        ),
        pytest.param(
            "key-does-not-match",
            [
                "postgres_tls.key_file",
                "db7.key",
                "is not the private key of",
                "db7.crt",
                "pair the certificate with the key",
            ],
            id="key-does-not-match-its-certificate",
        ),
        pytest.param(
            "expired-ca",
            ["postgres_tls.ca_dir", "ca.crt expired on", "pgfortress ca init"],
            id="expired-ca",
        ),
    ],
)
def test_bad_operator_tls_is_refused_with_host_key_and_fix(
    tmp_path: Path, case: str, expected: list[str]
) -> None:
    spec = _tls_case(tmp_path, case)
    with pytest.raises(TLSError) as caught:
        host_certificate("db7", spec, dns_names=["db7"], ip_addresses=HOST_IPS)
    message = str(caught.value)
    assert message.startswith("host db7: postgres_tls")
    for fragment in expected:
        assert fragment in message


def test_a_good_operator_pair_is_presented(tmp_path: Path) -> None:
    (tmp_path / "theirs").mkdir()
    cert_file, key_file = _operator_pair(tmp_path, HOST_IPS)
    spec = TlsSpec(ca_dir=_ca_dir(tmp_path), cert_file=cert_file, key_file=key_file)
    ca, issued = host_certificate("db7", spec, dns_names=["db7"], ip_addresses=HOST_IPS)
    assert issued.cert_pem in cert_file.read_bytes()
    assert ca.directory == spec.ca_dir
