"""End to end: deploy hardened PostgreSQL to real lab hosts and attack it a little.

One lab (db1, gw1, client1) per platform: Debian 12 with PostgreSQL 15, then
Debian 13 with PostgreSQL 17. The deploy runs twice; the second run must
change nothing. Then the host checks run through testinfra and clients try to
connect from the control machine, from a gateway the policy names and from a
client host it does not.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pgfortress import lab as labs
from pgfortress import tls
from pgfortress.lab import LabState
from pgfortress.lab.platforms import platform_named

from .conftest import (
    REPO,
    DeployRun,
    lab_name,
    run_deploy,
    run_host_checks,
    ssh,
    ssh_run,
)

pytestmark = pytest.mark.lab

# Each platform on its own lab, one after the other (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("pg"), "debian13": lab_name("pg13")}
PROBE = "pgfortress_probe"


@dataclass(frozen=True)
class Deployed:
    lab: LabState
    first: DeployRun
    second: DeployRun

    @property
    def db(self) -> labs.LabHost:
        return self.lab.hosts["db1"]

    @property
    def ca_file(self) -> Path:
        return self.lab.dir / "ca" / "ca.crt"

    @property
    def password_file(self) -> Path:
        return self.lab.dir / "secrets" / "db1" / PROBE


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def deployed(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    platform, name = request.param, LAB_NAMES[request.param]
    state = labs.up(name, ["db1", "gw1", "client1"], platform=platform)
    try:
        tls.init_ca(state.dir / "ca", f"pgfortress lab {name} CA")
        first = run_deploy(state, "deploys/postgres.py")
        assert first.returncode == 0, first.output[-4000:]
        second = run_deploy(state, "deploys/postgres.py")
        assert second.returncode == 0, second.output[-4000:]
        yield Deployed(state, first, second)
    finally:
        labs.down(name)


def test_the_platforms_postgresql_runs(deployed: Deployed) -> None:
    major = platform_named(deployed.lab.platform).postgres_major
    version = ssh(
        deployed.lab,
        "db1",
        "runuser -u postgres -- env -C / psql -XAtc 'SHOW server_version_num'",
    )
    assert int(version) // 10000 == major
    install = f"[db1] Harden PostgreSQL server | Install postgresql-{major}"
    assert install in deployed.first.changed


def test_first_run_changes_the_host(deployed: Deployed) -> None:
    changed = deployed.first.changed
    assert len(changed) >= 10, deployed.first.output[-3000:]
    assert all(line.startswith("[db1] ") for line in changed)
    assert deployed.first.grand_total[1] == len(changed)


def test_second_run_changes_nothing(deployed: Deployed) -> None:
    assert deployed.second.changed == [], "\n".join(deployed.second.changed)
    operations, changed, failed, unchanged = deployed.second.grand_total
    assert (changed, failed) == (0, 0)
    assert unchanged == operations == len(deployed.second.unchanged) >= 10


def test_host_checks_pass_through_testinfra(deployed: Deployed) -> None:
    checks = run_host_checks(deployed.lab, ["db1"])
    assert checks.returncode == 0, checks.output
    assert " passed" in checks.summary
    assert "skipped" not in checks.summary
    assert "failed" not in checks.summary


def psql_from_control(
    deployed: Deployed, host: str, tmp_path: Path, **params: str
) -> subprocess.CompletedProcess[str]:
    """psql on this machine; the password goes through a 0600 pgpass file."""
    passfile = tmp_path / "pgpass"
    password = deployed.password_file.read_text().strip()
    passfile.write_text(f"*:*:*:{PROBE}:{password}\n")
    passfile.chmod(0o600)
    conninfo = {
        "host": host,
        "dbname": "postgres",
        "user": PROBE,
        "connect_timeout": "5",
    } | params
    dsn = " ".join(f"{key}={value}" for key, value in conninfo.items())
    query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    env = os.environ | {"PGPASSFILE": str(passfile)}
    env.pop("PGPASSWORD", None)
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-F", " ", dsn, "-c", query],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def psql_select_one(dsn: str) -> subprocess.CompletedProcess[str]:
    """``SELECT 1`` with psql, never prompting for a password."""
    return subprocess.run(
        ["psql", "-X", "-w", dsn, "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_verify_full_with_the_ca_connects_over_tls(
    deployed: Deployed, tmp_path: Path, family: str
) -> None:
    address = deployed.db.address if family == "ipv4" else deployed.db.address6
    result = psql_from_control(
        deployed,
        address,
        tmp_path,
        sslmode="verify-full",
        sslrootcert=str(deployed.ca_file),
    )
    assert result.returncode == 0, result.stderr
    ssl, version = result.stdout.split()
    assert ssl == "t"
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_plaintext_is_refused(deployed: Deployed, tmp_path: Path) -> None:
    result = psql_from_control(
        deployed, deployed.db.address, tmp_path, sslmode="disable"
    )
    assert result.returncode != 0
    assert "no encryption" in result.stderr or "rejects connection" in result.stderr


def test_a_foreign_ca_is_not_trusted(deployed: Deployed, tmp_path: Path) -> None:
    foreign = tls.init_ca(tmp_path / "foreign", "someone else")
    result = psql_from_control(
        deployed,
        deployed.db.address,
        tmp_path,
        sslmode="verify-full",
        sslrootcert=str(foreign.directory / "ca.crt"),
    )
    assert result.returncode != 0
    assert "certificate verify failed" in result.stderr


def test_wrong_password_is_refused_without_a_hint(
    deployed: Deployed, tmp_path: Path
) -> None:
    passfile = tmp_path / "wrong"
    passfile.write_text(f"*:*:*:{PROBE}:not-the-password\n")
    passfile.chmod(0o600)
    result = psql_select_one(
        f"host={deployed.db.address} dbname=postgres user={PROBE} "
        f"sslmode=verify-full sslrootcert={deployed.ca_file} passfile={passfile}"
    )
    assert result.returncode != 0
    assert f'password authentication failed for user "{PROBE}"' in result.stderr


@pytest.fixture(scope="module")
def clients(deployed: Deployed) -> LabState:
    """psql on the gateway and client hosts, installed through the lab's proxy."""
    lab = deployed.lab
    for name in ("gw1", "client1"):
        ssh(
            lab,
            name,
            "DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && "
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            "--no-install-recommends postgresql-client >/dev/null",
        )
    return lab


def remote_psql(
    deployed: Deployed, lab: LabState, client: str, sslmode: str
) -> subprocess.CompletedProcess[str]:
    password = deployed.password_file.read_text().strip()
    # The password reaches the client as a 0600 file through SSH's stdin,
    # never on a command line.
    ssh(
        lab,
        client,
        "umask 077 && mkdir -p /root/.pgfortress && cat > /root/.pgfortress/pgpass",
        stdin=f"*:*:*:{PROBE}:{password}\n",
    )
    ssh(
        lab,
        client,
        "cat > /root/.pgfortress/ca.crt",
        stdin=deployed.ca_file.read_text(),
    )
    dsn = (
        f"host={deployed.db.address} dbname=postgres user={PROBE} sslmode={sslmode} "
        "sslrootcert=/root/.pgfortress/ca.crt passfile=/root/.pgfortress/pgpass "
        "connect_timeout=5"
    )
    return ssh_run(lab, client, f"psql -X -A -t -w '{dsn}' -c 'SELECT 1'")


def test_a_gateway_named_in_the_policy_connects(
    deployed: Deployed, clients: LabState
) -> None:
    result = remote_psql(deployed, clients, "gw1", "verify-full")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_a_client_whose_network_is_not_named_is_refused(
    deployed: Deployed, clients: LabState
) -> None:
    result = remote_psql(deployed, clients, "client1", "verify-full")
    assert result.returncode != 0
    assert "pg_hba.conf rejects connection" in result.stderr
    assert deployed.lab.hosts["client1"].address in result.stderr


def _hba_digest(deployed: Deployed) -> str:
    text = ssh(deployed.lab, "db1", "cat /etc/postgresql/*/main/pg_hba.conf")
    return hashlib.sha256(text.encode()).hexdigest()


BAD_INVENTORIES: list[Any] = [
    pytest.param(
        {
            "postgres_hba": [
                {"databases": "app", "users": "u", "address": "10.0.0.300/24"}
            ]
        },
        ["db1", "postgres_hba[0]", "is not an IPv4 or IPv6 network", "CIDR"],
        id="malformed-network",
    ),
    pytest.param(
        {
            "postgres_hba": [
                {
                    "databases": "app",
                    "users": "u",
                    "address": "10.0.0.0/8",
                    "method": "scram",
                }
            ]
        },
        ["db1", "postgres_hba[0]", "'scram' is not a PostgreSQL authentication method"],
        id="unknown-auth-method",
    ),
    pytest.param(
        {"postgres_listen": ["192.0.2.250"]},
        ["db1", "postgres_listen", "192.0.2.250 is not an address of this host"],
        id="listen-address-not-on-host",
    ),
    pytest.param(
        {"postgres_tls": {"ca_dir": "/nonexistent/pgfortress-ca"}},
        ["db1", "postgres_tls", "/nonexistent/pgfortress-ca", "pgfortress ca init"],
        id="missing-ca",
    ),
]


# Refused before any change, the same way on every platform: one lab is enough.
@pytest.mark.parametrize("deployed", ["debian12"], indirect=True)
@pytest.mark.parametrize(("overrides", "fragments"), BAD_INVENTORIES)
def test_bad_inventory_is_stopped_before_any_change(
    deployed: Deployed, tmp_path: Path, overrides: dict[str, Any], fragments: list[str]
) -> None:
    inventory = tmp_path / "bad.py"
    inventory.write_text(
        "import runpy\n"
        f"_base = runpy.run_path({str(REPO / 'inventories/lab.py')!r})\n"
        "_hosts, _data = _base['db']\n"
        f"db = (_hosts, {{**_data, **{overrides!r}}})\n"
    )
    before = _hba_digest(deployed)
    run = run_deploy(deployed.lab, "deploys/postgres.py", inventory=str(inventory))
    assert run.returncode != 0
    for fragment in fragments:
        assert fragment in run.output, run.output[-3000:]
    assert run.changed == []
    assert "Beginning operation run" not in run.output
    assert _hba_digest(deployed) == before


def test_the_superuser_is_refused_over_tcp(deployed: Deployed, tmp_path: Path) -> None:
    result = psql_select_one(
        f"host={deployed.db.address} dbname=postgres user=postgres "
        f"sslmode=verify-full sslrootcert={deployed.ca_file} connect_timeout=5"
    )
    assert result.returncode != 0
    assert "pg_hba.conf rejects connection" in result.stderr
    assert 'user "postgres"' in result.stderr
