"""End to end: database roles from specs/lab.yml, proved by a privilege matrix.

Each login role connects over TLS from the control machine and tries what the
spec allows (must work) and what it does not (must fail with "permission
denied"). Tables are created by the owner AFTER the spec was applied, so
default privileges must cover them. Everything runs on Debian 12 (PostgreSQL
15) and again on Debian 13 (PostgreSQL 17), one lab after the other.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from pgfortress.lab.platforms import platform_named

from .conftest import REPO, DeployRun, lab_name, run_deploy, ssh

pytestmark = pytest.mark.lab

LAB_NAMES = {"debian12": lab_name("roles"), "debian13": lab_name("roles13")}
MIGRATION = """
SET ROLE app_owner;
CREATE TABLE app.items (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO app.items (name) VALUES ('first');
CREATE TABLE api.products (id int PRIMARY KEY, title text);
INSERT INTO api.products VALUES (1, 'lamp');
CREATE FUNCTION api.hello() RETURNS text LANGUAGE sql AS $$ SELECT 'hello' $$;
"""


@dataclass(frozen=True)
class RolesLab:
    lab: LabState
    runs: list[DeployRun]

    def password(self, role: str) -> str:
        return (self.lab.dir / "secrets" / "db1" / role).read_text().strip()


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def roles_lab(request: pytest.FixtureRequest) -> Iterator[RolesLab]:
    platform, name = request.param, LAB_NAMES[request.param]
    state = labs.up(name, ["db1"], platform=platform)
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {name} CA")
        runs = [run_deploy(state, "deploys/site.py") for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.output[-4000:]
        done = RolesLab(state, runs)
        # A migration run by the migrator after the spec was applied.
        result = sql(done, "app_migrator", MIGRATION, database="app")
        assert result.returncode == 0, result.stderr
        runs.append(run_deploy(state, "deploys/database_roles.py"))
        yield done
    finally:
        labs.down(name)


def sql(
    roles: RolesLab, role: str, script: str, database: str = "app"
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as ``role`` over TLS (verify-full) from this machine."""
    passfile = roles.lab.dir / f"pgpass-{role}"
    passfile.write_text(f"*:*:*:{role}:{roles.password(role)}\n")
    passfile.chmod(0o600)
    dsn = (
        f"host={roles.lab.hosts['db1'].address} dbname={database} user={role} "
        f"sslmode=verify-full sslrootcert={roles.lab.dir / 'ca' / 'ca.crt'} "
        f"passfile={passfile} connect_timeout=5"
    )
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", dsn],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_first_run_creates_roles_and_second_changes_nothing(
    roles_lab: RolesLab,
) -> None:
    first, second, _ = roles_lab.runs
    assert "[db1] Database roles from the spec | Apply the database roles spec" in (
        first.changed
    )
    assert second.changed == [], "\n".join(second.changed)


def test_the_api_memberships_use_what_the_server_version_offers(
    roles_lab: RolesLab,
) -> None:
    # PostgreSQL 16 and later state inherit and set per membership; 15 relies
    # on the authenticator's own NOINHERIT for the same meaning.
    major = platform_named(roles_lab.lab.platform).postgres_major
    grant = 'GRANT "web_anon" TO "authenticator"'
    wanted = f"{grant} WITH INHERIT FALSE, SET TRUE" if major >= 16 else grant
    shown = [line.rstrip() for line in roles_lab.runs[0].output.splitlines()]
    assert any(line.endswith(f" {wanted}") for line in shown), shown[-60:]


def test_objects_created_after_the_spec_need_no_new_run(roles_lab: RolesLab) -> None:
    after_migration = roles_lab.runs[2]
    assert after_migration.returncode == 0, after_migration.output[-3000:]
    assert after_migration.changed == [], after_migration.output[-3000:]
    assert "nothing to change" in after_migration.output


ALLOWED = [
    ("app_rw", "SELECT count(*) FROM app.items"),
    ("app_rw", "INSERT INTO app.items (name) VALUES ('rw')"),
    ("app_rw", "UPDATE app.items SET name = name"),
    ("app_rw", "DELETE FROM app.items WHERE name = 'nothing'"),
    ("app_ro", "SELECT count(*) FROM app.items"),
    ("reporting", "SELECT count(*) FROM app.items"),
    ("app_migrator", "SET ROLE app_owner; CREATE TABLE app.later (id int)"),
    ("authenticator", "SET ROLE web_anon; SELECT title FROM api.products"),
    ("authenticator", "SET ROLE web_user; SELECT api.hello()"),
    ("authenticator", "SET ROLE web_user; UPDATE api.products SET title = title"),
]


@pytest.mark.parametrize(("role", "statement"), ALLOWED)
def test_what_the_spec_allows_works(
    roles_lab: RolesLab, role: str, statement: str
) -> None:
    result = sql(roles_lab, role, statement)
    assert result.returncode == 0, result.stderr


DENIED = [
    ("app_rw", "CREATE TABLE public.sneaky (id int)", "permission denied for schema"),
    ("app_rw", "CREATE TABLE app.sneaky (id int)", "permission denied for schema"),
    ("app_rw", "TRUNCATE app.items", "permission denied for table"),
    ("app_rw", "SELECT * FROM api.products", "permission denied for schema"),
    ("app_rw", "SET ROLE app_owner", "permission denied to set role"),
    # app_ro's sessions are read-only by its role setting; switch that off to
    # prove the privileges themselves refuse the write.
    (
        "app_ro",
        "SET default_transaction_read_only = off; "
        "INSERT INTO app.items (name) VALUES ('x')",
        "denied",
    ),
    (
        "app_ro",
        "SET default_transaction_read_only = off; CREATE TABLE public.sneaky (id int)",
        "denied for schema",
    ),
    ("reporting", "DELETE FROM app.items", "permission denied for table"),
    ("app_migrator", "CREATE TABLE app.direct (id int)", "permission denied"),
    ("authenticator", "SELECT count(*) FROM app.items", "permission denied"),
    ("authenticator", "SELECT title FROM api.products", "permission denied"),
    ("authenticator", "SET ROLE app_rw", "permission denied to set role"),
    (
        "authenticator",
        "SET ROLE web_anon; DELETE FROM api.products",
        "permission denied",
    ),
    ("authenticator", "SET ROLE web_anon; SELECT api.hello()", "permission denied"),
]


@pytest.mark.parametrize(("role", "statement", "error"), DENIED)
def test_everything_else_is_denied(
    roles_lab: RolesLab, role: str, statement: str, error: str
) -> None:
    result = sql(roles_lab, role, statement)
    assert result.returncode != 0
    assert error in result.stderr


def test_a_database_not_granted_is_refused(roles_lab: RolesLab) -> None:
    result = sql(roles_lab, "app_rw", "SELECT 1", database="archive")
    assert result.returncode != 0
    assert 'permission denied for database "archive"' in result.stderr
    granted = sql(roles_lab, "reporting", "SELECT 1", database="archive")
    assert granted.returncode == 0, granted.stderr


def test_passwords_are_scram_and_settings_apply(roles_lab: RolesLab) -> None:
    result = sql(roles_lab, "app_rw", "SHOW statement_timeout")
    assert result.stdout.strip() == "30s"
    stored = ssh(
        roles_lab.lab,
        "db1",
        "runuser -u postgres -- env -C / psql -XAt -c "
        "\"SELECT count(*) FROM pg_authid WHERE rolname LIKE 'app_%' "
        "AND rolpassword LIKE 'SCRAM-SHA-256$%'\"",
    )
    assert stored.strip() == "3"


def test_an_md5_password_found_on_the_server_is_replaced(roles_lab: RolesLab) -> None:
    ssh(
        roles_lab.lab,
        "db1",
        "runuser -u postgres -- env -C / psql -XAtq -v ON_ERROR_STOP=1 "
        "-c \"SET password_encryption = 'md5'\" "
        "-c \"ALTER ROLE app_ro PASSWORD 'legacy-md5'\"",
    )
    run = run_deploy(roles_lab.lab, "deploys/database_roles.py")
    assert run.returncode == 0, run.output[-3000:]
    assert "md5" in run.output
    assert "ALTER ROLE \"app_ro\" PASSWORD '********'" in run.output
    assert "legacy-md5" not in run.output
    assert sql(roles_lab, "app_ro", "SELECT 1").returncode == 0
    kind = ssh(
        roles_lab.lab,
        "db1",
        "runuser -u postgres -- env -C / psql -XAt -c "
        "\"SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'app_ro'\"",
    )
    assert kind.strip() == "SCRAM-SHA-256$"


def _without_app_ro_grant(tmp_path: Path) -> Path:
    """specs/lab.yml less app_ro's SELECT on the app schema's tables."""
    spec = (REPO / "specs/lab.yml").read_text()
    line = "      - {to: app_ro, on: all tables in schema app, privileges: [SELECT]}\n"
    assert line in spec
    smaller = tmp_path / "smaller.yml"
    smaller.write_text(spec.replace(line, ""))
    return smaller


def test_removing_a_grant_from_the_spec_revokes_only_that(
    roles_lab: RolesLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smaller = _without_app_ro_grant(tmp_path)
    with monkeypatch.context() as patch:
        patch.setenv("PGFORTRESS_DATABASE_ROLES", str(smaller))
        revoke = run_deploy(roles_lab.lab, "deploys/database_roles.py")
        again = run_deploy(roles_lab.lab, "deploys/database_roles.py")
    assert revoke.returncode == 0, revoke.output[-3000:]
    statements = [
        line.strip() for line in revoke.output.splitlines() if "REVOKE" in line
    ]
    assert statements
    assert all('"app_ro"' in s for s in statements), statements
    assert not [
        line for line in revoke.output.splitlines() if " GRANT " in f" {line.strip()}"
    ]
    assert again.changed == []
    denied = sql(roles_lab, "app_ro", "SELECT count(*) FROM app.items")
    assert "permission denied for table items" in denied.stderr
    still = sql(roles_lab, "app_rw", "SELECT count(*) FROM app.items")
    assert still.returncode == 0, still.stderr
    restored = run_deploy(roles_lab.lab, "deploys/database_roles.py")
    assert restored.returncode == 0
    assert sql(roles_lab, "app_ro", "SELECT count(*) FROM app.items").returncode == 0


BAD_SPECS = [
    pytest.param(
        ("member_of: [app_ro]", "member_of: [app_r0]"),
        ["smaller.yml:", "roles.reporting.member_of[0]", "app_r0"],
        id="unknown-role",
    ),
    pytest.param(
        ("privileges: [CONNECT]", "privileges: [EXECUTE]"),
        ["smaller.yml:", "EXECUTE", "CONNECT"],
        id="privilege-not-valid-for-databases",
    ),
]


# Refused before any change, the same way on every platform: one lab is enough.
@pytest.mark.parametrize("roles_lab", ["debian12"], indirect=True)
@pytest.mark.parametrize(("edit", "fragments"), BAD_SPECS)
def test_a_bad_spec_is_stopped_before_any_change(
    roles_lab: RolesLab,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    edit: tuple[str, str],
    fragments: list[str],
) -> None:
    spec = (REPO / "specs/lab.yml").read_text()
    assert edit[0] in spec
    bad = tmp_path / "smaller.yml"
    bad.write_text(spec.replace(edit[0], edit[1]))
    monkeypatch.setenv("PGFORTRESS_DATABASE_ROLES", str(bad))
    run = run_deploy(roles_lab.lab, "deploys/site.py")
    assert run.returncode != 0
    for fragment in fragments:
        assert fragment in run.output, run.output[-2000:]
    assert run.changed == []
    assert "Beginning operation run" not in run.output


def test_a_dry_run_shows_the_sql_masks_secrets_and_changes_nothing(
    roles_lab: RolesLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smaller = _without_app_ro_grant(tmp_path)
    monkeypatch.setenv("PGFORTRESS_DATABASE_ROLES", str(smaller))
    dry = run_deploy(roles_lab.lab, "deploys/database_roles.py", extra=["--dry"])
    assert dry.returncode == 0, dry.output[-3000:]
    shown = [row.strip() for row in dry.output.splitlines() if "REVOKE" in row]
    assert shown, dry.output[-3000:]
    assert all('"app_ro"' in row for row in shown), shown
    secrets = roles_lab.lab.dir / "secrets" / "db1"
    for secret in secrets.iterdir():
        assert secret.read_text().strip() not in dry.output, secret.name
    # Nothing was applied: the grant the dry run would revoke still works.
    kept = sql(roles_lab, "app_ro", "SELECT count(*) FROM app.items")
    assert kept.returncode == 0, kept.stderr
