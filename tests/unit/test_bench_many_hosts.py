"""Reading pyinfra's output in bench/many_hosts.py: changes and phases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench._lab import BenchError
from bench.many_hosts import (
    NEW_GRANT,
    compare,
    comparison_text,
    cpu_from_stat,
    hosts_cpu_by_phase,
    no_wait_text,
    parse_results,
    prepare_cpu,
    split_phases,
    with_grant,
)
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


def test_cpu_is_read_from_proc_stat_past_the_command_name() -> None:
    # The command name may hold spaces and parentheses; fields 14 and 15 count.
    stat = "4242 (py (infra) x) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 1 0"
    assert cpu_from_stat(stat, 100) == 2.0


def test_prepare_cpu_is_the_cpu_between_its_progress_lines() -> None:
    assert prepare_cpu({"connect": 0.4, "prepare": 0.5, "execute": 1.25}) == 0.75
    assert prepare_cpu({"prepare": 0.5}) == 0.0


def _summary(change_s: float, prepare: float, commands: float) -> dict[str, Any]:
    sizes = {
        size: {
            "change": {
                "median_s": change_s * n,
                "prepare_cpu_per_host_s": prepare,
            }
        }
        for n, size in ((1, "1"), (2, "5"))
    }
    return {
        "summary": {
            "sizes": sizes,
            "ratio_change": 2.0,
            "prepare_cpu_per_added_host_s": prepare,
        },
        "round_trips": {"1": {"ssh_commands_per_host": commands}},
    }


def test_before_and_after_are_compared_per_size() -> None:
    comparison = compare(_summary(4.0, 0.2, 33), _summary(3.0, 0.1, 17))
    one, five = comparison["sizes"]["1"], comparison["sizes"]["5"]
    assert one["change_s"] == [4.0, 3.0]
    assert one["change_ratio"] == 0.75
    assert one["prepare_cpu_ratio"] == 0.5
    assert one["ssh_commands_per_host"] == [33, 17]
    assert "ssh_commands_per_host" not in five
    assert five["change_ratio"] == 0.75
    results = {"comparison": comparison, "environment": {"baseline": "abc1234"}}
    text = comparison_text(results)
    assert "--baseline abc1234" in text
    assert "| 1 | 4.0 → 3.0 | 0.75 | 0.200 → 0.100 | 0.5 | 33 → 17 |" in text
    assert "before 0.200 s, after 0.100 s" in text
    assert comparison_text({"environment": {}}) == ""


def test_hosts_cpu_is_split_at_the_same_progress_lines() -> None:
    stamps = {"start": 10.0, "prepare": 10.5, "execute": 14.0, "results": 19.0}
    assert hosts_cpu_by_phase(stamps, 19.5) == {
        "all": 9.5,
        "prepare": 3.5,
        "execute": 5.0,
    }
    # A run that failed before executing has no execute phase to report.
    assert hosts_cpu_by_phase({"start": 1.0, "prepare": 1.5}, 2.0) == {"all": 1.0}


def test_the_no_wait_variant_is_reported_beside_the_others() -> None:
    summary = _summary(1.5, 0.1, 8)["summary"]
    summary |= {"ratio_revert": 2.5, "ratio_rerun": 1.9}
    text = no_wait_text({"no-wait": {"summary": summary}})
    assert "`--no-wait`" in text
    assert "1 host(s) 1.5 s, 5 host(s) 3.0 s" in text
    assert "5 hosts / 1 host\n2.00 (revert 2.50, re-run\n1.90)" in text
    assert no_wait_text({}) == ""
