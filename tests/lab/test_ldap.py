"""End to end: people log in to PostgreSQL with their directory password.

One lab (db1, ldap1) per platform: Debian 12, then Debian 13 (slapd and
PostgreSQL 17 from trixie). ``deploys/ldap.py`` installs slapd on ldap1 with the
lab inventory's two people, ``deploys/postgres.py`` gives db1 an ``ldap`` rule
(LDAPS to ldap1, verified against the lab CA); each deploy runs twice and the
second run changes nothing. Then people connect from the control machine.
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
from pgfortress.plan.ldap import parse_ldif

from ._platform_labs import platform_lab
from .conftest import (
    DeployRun,
    lab_name,
    run_deploy,
    run_host_checks,
    ssh,
    ssh_run,
)

pytestmark = pytest.mark.lab

# Each platform on its own lab (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("ldap"), "debian13": lab_name("ldap13")}
PEOPLE_DN = "ou=people,dc=pgfortress,dc=lab"
DIRECTORY_CA = "/etc/ldap/pgfortress-directory-ca.crt"


@dataclass(frozen=True)
class Deployed:
    lab: LabState
    runs: dict[str, list[DeployRun]]

    @property
    def db(self) -> labs.LabHost:
        return self.lab.hosts["db1"]

    @property
    def ldap(self) -> labs.LabHost:
        return self.lab.hosts["ldap1"]

    @property
    def ca_file(self) -> Path:
        return self.lab.dir / "ca" / "ca.crt"

    def password(self, uid: str) -> str:
        return (self.lab.dir / "secrets" / "ldap" / uid).read_text().strip()


def _deploy_twice(state: LabState, deploy: str) -> list[DeployRun]:
    runs = []
    for _ in range(2):
        run = run_deploy(state, deploy)
        assert run.returncode == 0, run.output[-4000:]
        runs.append(run)
    return runs


def _deploy(state: LabState) -> Deployed:
    tls.init_ca(state.dir / "ca", f"pgfortress lab {state.name} CA")
    runs = {
        "ldap": _deploy_twice(state, "deploys/ldap.py"),
        "postgres": _deploy_twice(state, "deploys/postgres.py"),
    }
    # ada is in the directory; eve has a database role but no directory entry.
    ssh(
        state,
        "db1",
        "runuser -u postgres -- env -C / psql -X -q -v ON_ERROR_STOP=1 "
        "-c 'CREATE ROLE directory_people NOLOGIN' "
        "-c 'CREATE ROLE ada LOGIN IN ROLE directory_people' "
        "-c 'CREATE ROLE eve LOGIN IN ROLE directory_people'",
    )
    return Deployed(state, runs)


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def deployed(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    # The Debian 13 lab is made while the Debian 12 tests run.
    yield from platform_lab(request, LAB_NAMES, ["db1", "ldap1"], _deploy)


def connect(
    deployed: Deployed,
    tmp_path: Path,
    user: str,
    password: str,
    sslmode: str,
    address: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """psql from this machine; the password goes through a 0600 pgpass file."""
    passfile = tmp_path / f"pgpass-{user}"
    passfile.write_text(f"*:*:*:{user}:{password}\n")
    passfile.chmod(0o600)
    dsn = (
        f"host={address or deployed.db.address} dbname=postgres user={user} "
        f"sslmode={sslmode} "
        f"sslrootcert={deployed.ca_file} passfile={passfile} connect_timeout=10"
    )
    query = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    return subprocess.run(
        ["psql", "-X", "-w", "-A", "-t", "-F", " ", dsn, "-c", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("deploy", ["ldap", "postgres"])
def test_first_run_changes_the_host(deployed: Deployed, deploy: str) -> None:
    first = deployed.runs[deploy][0]
    host = "ldap1" if deploy == "ldap" else "db1"
    assert any(line.startswith(f"[{host}] ") for line in first.changed), first.output
    if deploy == "postgres":
        assert any("OpenLDAP client configuration" in c for c in first.changed)


@pytest.mark.parametrize("deploy", ["ldap", "postgres"])
def test_second_run_changes_nothing(deployed: Deployed, deploy: str) -> None:
    second = deployed.runs[deploy][1]
    assert second.changed == [], "\n".join(second.changed)
    operations, changed, failed, unchanged = second.grand_total
    assert (changed, failed) == (0, 0)
    assert unchanged == operations >= 10


def test_ldap_host_checks_pass_through_testinfra(deployed: Deployed) -> None:
    checks = run_host_checks(deployed.lab, ["db1"], "tests/host/test_ldap.py")
    assert checks.returncode == 0, checks.output
    assert checks.summary.startswith("1 passed"), checks.output
    assert "skipped" not in checks.summary


def test_no_password_hash_or_key_in_deploy_output(deployed: Deployed) -> None:
    secrets = [deployed.password("ada"), deployed.password("grace")]
    for runs in deployed.runs.values():
        for run in runs:
            for secret in secrets:
                assert secret not in run.output
            assert "$argon2id$" not in run.output
            assert "PRIVATE KEY" not in run.output


@pytest.mark.parametrize("family", ["ipv4-ldaps", "ipv6-starttls"])
def test_a_person_logs_in_with_the_directory_password(
    deployed: Deployed, tmp_path: Path, family: str
) -> None:
    """The lab's rule for IPv4 clients uses LDAPS, the one for IPv6 StartTLS."""
    address = deployed.db.address if family == "ipv4-ldaps" else deployed.db.address6
    password = deployed.password("ada")
    result = connect(deployed, tmp_path, "ada", password, "verify-full", address)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ada", "t"]


def test_wrong_password_and_unknown_person_get_the_same_refusal(
    deployed: Deployed, tmp_path: Path
) -> None:
    wrong = connect(deployed, tmp_path, "ada", "not-the-password", "verify-full")
    unknown = connect(
        deployed, tmp_path, "eve", deployed.password("ada"), "verify-full"
    )
    assert wrong.returncode != 0
    assert unknown.returncode != 0
    assert 'LDAP authentication failed for user "ada"' in wrong.stderr
    # Nothing tells a wrong password from a person the directory does not know.
    assert unknown.stderr.replace('"eve"', '"ada"') == wrong.stderr


def test_a_connection_without_tls_is_refused(
    deployed: Deployed, tmp_path: Path
) -> None:
    result = connect(deployed, tmp_path, "ada", deployed.password("ada"), "disable")
    assert result.returncode != 0
    assert "no encryption" in result.stderr


def test_the_directory_refuses_a_simple_bind_without_tls(deployed: Deployed) -> None:
    ssh(
        deployed.lab,
        "ldap1",
        "umask 077 && cat > /run/pgf-test-password",
        stdin=deployed.password("ada"),
    )
    try:
        bind = (
            f"ldapwhoami -x -D uid=ada,{PEOPLE_DN} -y /run/pgf-test-password "
            f"-H ldap://{deployed.ldap.address}"
        )
        plain = ssh_run(deployed.lab, "ldap1", bind)
        starttls = ssh_run(deployed.lab, "ldap1", f"{bind} -ZZ")
        ldaps = ssh_run(deployed.lab, "ldap1", bind.replace("ldap://", "ldaps://"))
    finally:
        ssh(deployed.lab, "ldap1", "rm -f /run/pgf-test-password")
    assert plain.returncode == 13, plain.stderr
    assert "Confidentiality required" in plain.stderr
    assert starttls.stdout.strip() == f"dn:uid=ada,{PEOPLE_DN}", starttls.stderr
    assert ldaps.stdout.strip() == f"dn:uid=ada,{PEOPLE_DN}", ldaps.stderr


def test_anonymous_clients_read_nothing(deployed: Deployed) -> None:
    result = ssh_run(
        deployed.lab,
        "ldap1",
        f"ldapsearch -x -LLL -H ldaps://{deployed.ldap.address} -b {PEOPLE_DN}",
    )
    assert "uid=ada" not in result.stdout
    assert result.returncode == 32, result.stdout + result.stderr


def test_passwords_are_stored_as_argon2id_hashes(deployed: Deployed) -> None:
    out = ssh(
        deployed.lab,
        "ldap1",
        "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// "
        f"-b {PEOPLE_DN} '(uid=*)' userPassword",
    )
    stored = {dn: entry["userPassword"] for dn, entry in parse_ldif(out).items()}
    assert sorted(stored) == [f"uid={uid},{PEOPLE_DN}" for uid in ("ada", "grace")]
    for values in stored.values():
        assert len(values) == 1
        assert values[0].startswith("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_directory_certificate_from_another_ca_is_refused(
    deployed: Deployed, tmp_path: Path
) -> None:
    """With a foreign CA in ldap.conf, PostgreSQL refuses to trust the directory.

    The next deploy puts the lab CA back and changes only that file.
    """
    foreign = tls.init_ca(tmp_path / "foreign", "someone else")
    ssh(
        deployed.lab,
        "db1",
        f"cat > {DIRECTORY_CA}",
        stdin=(foreign.directory / "ca.crt").read_text(),
    )
    refused = connect(
        deployed, tmp_path, "ada", deployed.password("ada"), "verify-full"
    )
    log = ssh(deployed.lab, "db1", "tail -n 20 /var/log/postgresql/*.log")
    repaired = run_deploy(deployed.lab, "deploys/postgres.py")
    again = connect(deployed, tmp_path, "ada", deployed.password("ada"), "verify-full")
    assert refused.returncode != 0
    assert 'LDAP authentication failed for user "ada"' in refused.stderr
    assert "Can't contact LDAP server" in log
    assert repaired.returncode == 0, repaired.output[-3000:]
    assert repaired.changed == [
        "[db1] Harden PostgreSQL server | CA of the directory's certificate"
    ], repaired.changed
    assert again.returncode == 0, again.stderr
