"""Which PostgreSQL major a host runs: inventory, clusters on the host, release."""

from __future__ import annotations

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan import PostgresLayout, layout_for
from pgfortress.plan.layout import installed_majors, release_mismatch

CHOICES = [
    # (Debian release, postgres_version, majors with a main cluster) → major
    pytest.param(12, None, [], 15, id="fresh-debian12"),
    pytest.param(13, None, [], 17, id="fresh-debian13"),
    pytest.param(12, None, [15], 15, id="deployed-debian12"),
    pytest.param(13, None, [17], 17, id="deployed-debian13"),
    pytest.param(13, None, [15], 15, id="upgraded-release-keeps-its-cluster"),
    pytest.param(13, None, [15, 17], 17, id="after-pg-upgradecluster"),
    pytest.param(13, 15, [17], 15, id="inventory-wins-over-clusters"),
    pytest.param(12, 17, [], 17, id="inventory-wins-over-release"),
    pytest.param(99, None, [16], 16, id="unknown-release-with-a-cluster"),
]


@pytest.mark.parametrize(("release", "configured", "installed", "major"), CHOICES)
def test_the_major_comes_from_inventory_then_clusters_then_release(
    release: int, configured: int | None, installed: list[int], major: int
) -> None:
    assert layout_for("db1", release, configured, installed).version == major


REFUSED = [
    pytest.param(
        13,
        [14, 15],
        ["host db1: postgres_version:", "clusters of PostgreSQL 14 and 15", "17"],
        id="several-clusters-none-shipped",
    ),
    pytest.param(
        99,
        [],
        ["host db1: postgres_version:", "Debian 99", "set postgres_version"],
        id="unknown-release",
    ),
]


@pytest.mark.parametrize(("release", "installed", "fragments"), REFUSED)
def test_an_ambiguous_major_needs_postgres_version(
    release: int, installed: list[int], fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        layout_for("db1", release, None, installed)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_installed_majors_reads_main_clusters_only() -> None:
    printed = [
        "/etc/postgresql/15/main/postgresql.conf",
        "/etc/postgresql/17/main/postgresql.conf",
        "/etc/postgresql/16/reports/postgresql.conf",
        "",
        "ls: cannot access something",
    ]
    assert installed_majors(printed) == [15, 17]
    assert installed_majors([]) == []


def test_a_kept_major_the_release_does_not_ship_is_explained() -> None:
    warning = release_mismatch("db1", PostgresLayout(15), 13)
    assert warning is not None
    assert "keeps PostgreSQL 15, while Debian 13 ships 17" in warning
    assert "pg_upgradecluster 15 main" in warning
    assert release_mismatch("db1", PostgresLayout(17), 13) is None
    assert release_mismatch("db1", PostgresLayout(16), 99) is None


LAYOUTS = [
    pytest.param(
        15,
        {
            "package": "postgresql-15",
            "service": "postgresql@15-main",
            "config_dir": "/etc/postgresql/15/main",
            "data_dir": "/var/lib/postgresql/15/main",
            "server_binary": "/usr/lib/postgresql/15/bin/postgres",
            "psql_binary": "/usr/lib/postgresql/15/bin/psql",
            "log_file": "/var/log/postgresql/postgresql-15-main.log",
        },
        id="15",
    ),
    pytest.param(
        17,
        {
            "package": "postgresql-17",
            "service": "postgresql@17-main",
            "config_dir": "/etc/postgresql/17/main",
            "data_dir": "/var/lib/postgresql/17/main",
            "server_binary": "/usr/lib/postgresql/17/bin/postgres",
            "psql_binary": "/usr/lib/postgresql/17/bin/psql",
            "log_file": "/var/log/postgresql/postgresql-17-main.log",
        },
        id="17",
    ),
]


@pytest.mark.parametrize(("major", "expected"), LAYOUTS)
def test_paths_and_names_follow_the_major(major: int, expected: dict[str, str]) -> None:
    layout = PostgresLayout(major)
    assert {name: getattr(layout, name) for name in expected} == expected
