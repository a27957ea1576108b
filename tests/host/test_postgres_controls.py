"""Checks for the hardening controls the audit reports on, beyond the basics.

Each check names the CIS PostgreSQL 15 Benchmark recommendations and dev-sec
postgres-baseline controls it covers; pgfortress/audit/catalogue.py says why
the others have no check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pgfortress.audit.numbering import MAJOR_PROPERTY
from pgfortress.spec.postgres import SUPPORTED_MAJORS

from .conftest import Expected

Psql = Callable[..., str]
control = pytest.mark.control


def _databases(psql: Psql) -> list[str]:
    return psql("SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1").split()


@control("cis:1.1")
def test_server_package_comes_from_debian(host: Any, expected: Expected) -> None:
    fields = host.check_output(
        "dpkg-query -W -f '${Maintainer}|${Version}' %s", expected.layout.package
    )
    maintainer, version = fields.split("|")
    assert "Debian PostgreSQL Maintainers" in maintainer, fields
    assert "pgdg" not in version, f"{version} is not a Debian archive build"


@control("devsec:postgres-02")
def test_server_version_is_a_supported_release(
    psql: Psql, record_property: Callable[[str, object], None]
) -> None:
    version = psql("SHOW server_version")
    major = int(re.split(r"[^0-9]", version, maxsplit=1)[0])
    # The audit names hosts whose major is not the CIS benchmark's.
    record_property(MAJOR_PROPERTY, major)
    assert major in SUPPORTED_MAJORS, version
    assert not re.search(r"beta|rc|devel", version, re.IGNORECASE), version


@control("cis:1.3")
def test_data_cluster_is_initialised_and_online(host: Any, expected: Expected) -> None:
    layout = expected.layout
    clusters = [
        line.split() for line in host.check_output("pg_lsclusters -h").splitlines()
    ]
    ours = [c for c in clusters if c[:2] == [str(layout.version), layout.cluster]]
    assert ours, clusters
    assert ours[0][3] == "online", clusters
    pg_version = host.file(f"{layout.data_dir}/PG_VERSION").content_string.strip()
    assert pg_version == str(layout.version)


@control("devsec:postgres-03")
def test_one_server_runs_on_the_host(host: Any, expected: Expected) -> None:
    output = host.check_output("ps -C postgres -o pid=,ppid=")
    rows = [line.split() for line in output.splitlines()]
    pids = {pid for pid, _ in rows}
    postmasters = [pid for pid, parent in rows if parent not in pids]
    assert len(postmasters) == 1, rows


@control("cis:3.1.2", "cis:3.1.6", "devsec:postgres-20")
def test_server_log_goes_to_a_private_file(
    host: Any, psql: Psql, expected: Expected
) -> None:
    assert "stderr" in psql("SHOW log_destination").split(",")
    log = host.file(expected.layout.log_file)
    assert log.is_file
    assert log.user == "postgres"
    assert log.mode & 0o007 == 0, f"{expected.layout.log_file} is {oct(log.mode)}"


@pytest.mark.parametrize(
    ("setting", "wanted"),
    [
        pytest.param("debug_print_parse", "off", marks=control("cis:3.1.16")),
        pytest.param("debug_print_rewritten", "off", marks=control("cis:3.1.17")),
        pytest.param("debug_print_plan", "off", marks=control("cis:3.1.18")),
        pytest.param("debug_pretty_print", "on", marks=control("cis:3.1.19")),
        pytest.param("log_hostname", "off", marks=control("cis:3.1.23")),
    ],
)
def test_logging_setting_holds_its_hardened_value(
    psql: Psql, setting: str, wanted: str
) -> None:
    assert psql(f"SHOW {setting}") == wanted


@control("cis:4.2", "devsec:postgres-08")
def test_only_postgres_holds_cluster_wide_powers(psql: Psql) -> None:
    holders = psql(
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles "
        "WHERE rolname <> 'postgres' AND (rolsuper OR rolcreaterole OR rolcreatedb "
        "OR rolreplication OR rolbypassrls)"
    )
    assert holders == "", f"database roles with cluster-wide powers: {holders}"


@control("devsec:postgres-06")
def test_every_login_role_but_postgres_has_a_password(psql: Psql) -> None:
    """People whom a live ``ldap`` rule lets in keep their password in the
    directory, so their database roles rightly have none."""
    missing = psql(
        "WITH directory AS (SELECT unnest(user_name) AS name "
        "FROM pg_hba_file_rules WHERE auth_method = 'ldap') "
        "SELECT string_agg(r.rolname, ',' ORDER BY r.rolname) FROM pg_authid r "
        "WHERE r.rolcanlogin AND r.rolname <> 'postgres' AND r.rolpassword IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM directory d WHERE d.name IN (r.rolname, 'all') "
        "OR (d.name LIKE '+%' AND pg_has_role(r.oid, "
        "(SELECT oid FROM pg_roles WHERE rolname = substr(d.name, 2)), 'MEMBER')))"
    )
    assert missing == "", f"LOGIN database roles without a password: {missing}"


@control("devsec:postgres-09")
def test_only_the_superuser_may_read_pg_authid(psql: Psql) -> None:
    grantees = psql(
        "SELECT coalesce(string_agg(DISTINCT a.grantee::regrole::text, ','), '') "
        "FROM pg_class c, aclexplode(c.relacl) a "
        "WHERE c.oid = 'pg_catalog.pg_authid'::regclass"
    )
    assert grantees == "postgres"


@control("cis:4.4", "devsec:postgres-17")
def test_public_holds_no_table_privileges_or_create(psql: Psql) -> None:
    for database in _databases(psql):
        tables = psql(
            "SELECT count(*) FROM information_schema.table_privileges "
            "WHERE grantee = 'PUBLIC' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            database=database,
        )
        assert tables == "0", f"{database}: {tables} table privileges held by PUBLIC"
        create = psql(
            "SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a "
            "WHERE n.nspname = 'public' AND a.grantee = 0 "
            "AND a.privilege_type = 'CREATE'",
            database=database,
        )
        assert create == "0", f"{database}: PUBLIC may CREATE in schema public"


@control("devsec:postgres-18")
def test_no_privilege_is_granted_with_grant_option(psql: Psql) -> None:
    for database in _databases(psql):
        grants = psql(
            "SELECT coalesce(string_agg(DISTINCT grantee || ' on ' || table_schema "
            "|| '.' || table_name, ', '), '') FROM information_schema.table_privileges "
            "WHERE is_grantable = 'YES' AND grantee <> grantor",
            database=database,
        )
        assert grants == "", f"{database}: WITH GRANT OPTION held by {grants}"


@control("devsec:postgres-04")
def test_untrusted_languages_are_only_c_and_internal(psql: Psql) -> None:
    for database in _databases(psql):
        untrusted = psql(
            "SELECT coalesce(string_agg(lanname, ','), '') FROM pg_language "
            "WHERE NOT lanpltrusted AND lanname NOT IN ('c', 'internal')",
            database=database,
        )
        assert untrusted == "", f"{database}: untrusted languages {untrusted}"


@control("devsec:postgres-05")
def test_no_procedural_language_beyond_the_defaults(psql: Psql) -> None:
    for database in _databases(psql):
        extra = psql(
            "SELECT coalesce(string_agg(lanname, ','), '') FROM pg_language "
            "WHERE lanname NOT IN ('internal', 'c', 'sql', 'plpgsql')",
            database=database,
        )
        assert extra == "", f"{database}: extra languages {extra}"


@control("cis:5.1", "devsec:postgres-13")
def test_local_logins_use_peer_or_are_rejected(psql: Psql) -> None:
    methods = psql(
        "SELECT coalesce(string_agg(DISTINCT auth_method, ','), '') "
        "FROM pg_hba_file_rules WHERE type = 'local'"
    ).split(",")
    assert set(methods) <= {"peer", "reject"}, methods
    assert "peer" in methods
