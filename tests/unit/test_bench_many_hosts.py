"""Reading pyinfra's output in bench/many_hosts.py: changes and phases."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._lab import BenchError
from bench.many_hosts import NEW_GRANT, parse_results, split_phases, with_grant
from pgfortress.spec.database_roles import parse_database_roles

REPO = Path(__file__).resolve().parents[2]

RESULTS = """\
--> Beginning operation run...
[db1] Success
--> Results:
    Operation                                     Hosts  Success  Error  No Change
    Refresh package lists                         5      -        -      5
    Client authentication policy (pg_hba.conf)    5      5        -      -
    Roles | Apply the database roles spec         5      5        -      -
    Grand total                                   15     10       -      5
"""


def test_changed_operations_are_counted_per_host_by_their_own_name() -> None:
    assert parse_results(RESULTS) == {
        "Client authentication policy (pg_hba.conf)": 5,
        "Apply the database roles spec": 5,
    }


def test_a_run_without_changes_reads_as_empty() -> None:
    quiet = RESULTS.replace("5      5        -      -", "5      -    -    5")
    assert parse_results(quiet) == {}


def test_an_error_fails_the_run() -> None:
    broken = RESULTS.replace("5      5        -      -", "5      4    1    -", 1)
    with pytest.raises(BenchError, match="1 error"):
        parse_results(broken)


def test_output_without_a_results_table_fails() -> None:
    with pytest.raises(BenchError, match="no results table"):
        parse_results("--> Loading config...\n")


def test_phases_are_cut_at_pyinfras_progress_lines() -> None:
    stamps = [
        (0.5, "--> Loading config...\n"),
        (1.0, "--> Connecting to hosts...\n"),
        (2.5, "--> Preparing operation files...\n"),
        (6.0, "--> Skipping change detection\n"),
        (6.0, "--> Beginning operation run...\n"),
        (9.0, "--> Results:\n"),
    ]
    assert split_phases(stamps, 9.5) == {
        "start-up": 1.0,
        "connect": 1.5,
        "prepare": 3.5,
        "execute": 3.0,
        "results": 0.5,
    }


def test_the_new_grant_lands_in_the_labs_spec_and_parses() -> None:
    spec = (REPO / "specs" / "lab.yml").read_text()
    changed = with_grant(spec)
    assert changed.count(NEW_GRANT) == spec.count(NEW_GRANT) + 1
    assert parse_database_roles(changed, "bench-roles.yml") != parse_database_roles(
        spec, "lab.yml"
    )


def test_a_spec_without_grants_is_refused() -> None:
    with pytest.raises(BenchError, match="no grants"):
        with_grant("roles: {}\n")
