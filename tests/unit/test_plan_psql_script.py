"""The psql script: cluster first, each database atomic, CREATE DATABASE outside."""

from __future__ import annotations

from dataclasses import dataclass

from pgfortress.plan.psql_script import psql_script, start_database


@dataclass(frozen=True)
class Stmt:
    database: str | None
    sql: str


def test_cluster_statements_run_first_then_each_database_in_a_transaction() -> None:
    script = psql_script(
        [
            Stmt("app", 'GRANT USAGE ON SCHEMA "app" TO "app_ro"'),
            Stmt(None, 'CREATE ROLE "app_ro"'),
            Stmt(None, 'CREATE DATABASE "app" OWNER "app_owner"'),
            Stmt("app", 'REVOKE ALL ON DATABASE "app" FROM PUBLIC;'),
        ]
    )
    assert script.splitlines() == [
        "\\set ON_ERROR_STOP on",
        "\\connect 'dbname=\\'postgres\\''",
        "BEGIN;",
        'CREATE ROLE "app_ro";',
        "COMMIT;",
        'CREATE DATABASE "app" OWNER "app_owner";',
        "\\connect 'dbname=\\'app\\''",
        "BEGIN;",
        'GRANT USAGE ON SCHEMA "app" TO "app_ro";',
        'REVOKE ALL ON DATABASE "app" FROM PUBLIC;',
        "COMMIT;",
    ]


def test_database_names_are_quoted_for_psql() -> None:
    script = psql_script([Stmt("it's", "SELECT 1")])
    assert "\\connect 'dbname=\\'it\\\\\\'s\\''" in script


def test_empty_plan_is_only_the_preamble() -> None:
    assert psql_script([]) == "\\set ON_ERROR_STOP on\n"


def test_psql_starts_where_the_first_statements_run() -> None:
    cluster_first = [Stmt("app", "SELECT 1"), Stmt(None, 'CREATE ROLE "r"')]
    assert start_database(cluster_first) == "postgres"
    assert start_database([Stmt("app", "SELECT 1")]) == "app"
    assert start_database([]) == "postgres"


def test_a_script_started_in_its_first_database_does_not_connect_again() -> None:
    statements = [Stmt("app", "SELECT 1"), Stmt("archive", "SELECT 2")]
    script = psql_script(statements, connected_to=start_database(statements))
    assert script.splitlines() == [
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
        "SELECT 1;",
        "COMMIT;",
        "\\connect 'dbname=\\'archive\\''",
        "BEGIN;",
        "SELECT 2;",
        "COMMIT;",
    ]
    # Started elsewhere, the script connects first.
    assert psql_script(statements, connected_to="postgres").splitlines()[1] == (
        "\\connect 'dbname=\\'app\\''"
    )


def test_a_database_name_with_an_equals_sign_is_not_a_connection_string() -> None:
    # psql's \connect reads a name containing "=" as a connection string:
    # "sslmode=disable" would name no database and connect to "postgres".
    script = psql_script([Stmt("sslmode=disable", "SELECT 1")])
    assert "\\connect 'dbname=\\'sslmode=disable\\''" in script
