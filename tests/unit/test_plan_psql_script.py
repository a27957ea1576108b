"""The psql script: cluster first, each database atomic, CREATE DATABASE outside."""

from __future__ import annotations

from dataclasses import dataclass

from pgfortress.plan.psql_script import psql_script


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
        "\\connect 'postgres'",
        "BEGIN;",
        'CREATE ROLE "app_ro";',
        "COMMIT;",
        'CREATE DATABASE "app" OWNER "app_owner";',
        "\\connect 'app'",
        "BEGIN;",
        'GRANT USAGE ON SCHEMA "app" TO "app_ro";',
        'REVOKE ALL ON DATABASE "app" FROM PUBLIC;',
        "COMMIT;",
    ]


def test_database_names_are_quoted_for_psql() -> None:
    script = psql_script([Stmt("it's", "SELECT 1")])
    assert "\\connect 'it\\'s'" in script


def test_empty_plan_is_only_the_preamble() -> None:
    assert psql_script([]) == "\\set ON_ERROR_STOP on\n"
