"""Control status from check outcomes, and the table, JUnit and HTML outputs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from pgfortress.audit import (
    CheckResult,
    Control,
    ControlResult,
    Coverage,
    Outcome,
    Status,
    render_html,
    render_junit,
    render_table,
    summarise,
)

CATALOGUE = (
    Control("cis:1.1", "packages come from an authorised archive"),
    Control("cis:1.2", "the service is enabled"),
    Control("cis:3.1.3", "collector on", Coverage.NOT_COVERED, "Debian's stderr log"),
    Control("cis:7.1", "replication role", Coverage.NOT_APPLICABLE, "no replication"),
    Control("devsec:postgres-11", "TLS is on", deviation="older releases want off"),
    Control("devsec:postgres-12", "strong ciphers"),
)


def run(check: str, outcome: Outcome, *controls: str, host: str = "db1") -> CheckResult:
    message = {Outcome.FAILED: "assert 'off' == 'on'", Outcome.SKIPPED: "no db"}
    return CheckResult(check, host, outcome, controls, message.get(outcome, ""))


RESULTS = [
    run("test_package", Outcome.PASSED, "cis:1.1"),
    run("test_service", Outcome.PASSED, "cis:1.2"),
    run("test_service", Outcome.SKIPPED, "cis:1.2", host="gw1"),
    run("test_tls", Outcome.PASSED, "devsec:postgres-11"),
    run("test_tls", Outcome.FAILED, "devsec:postgres-11", host="db2"),
]


@pytest.fixture
def rows() -> list[ControlResult]:
    return summarise(RESULTS, CATALOGUE)


def test_status_per_control(rows: list[ControlResult]) -> None:
    assert [(row.control.id, row.status) for row in rows] == [
        ("cis:1.1", Status.PASS),
        ("cis:1.2", Status.PASS),
        ("cis:3.1.3", Status.NOT_COVERED),
        ("cis:7.1", Status.NOT_APPLICABLE),
        ("devsec:postgres-11", Status.FAIL),
        ("devsec:postgres-12", Status.NOT_COVERED),
    ]
    assert rows[4].reason == "failed: test_tls on db2"
    assert rows[5].reason == "no host check in this run names this control"


def test_a_control_whose_checks_were_all_skipped_is_not_applicable() -> None:
    (row,) = summarise([run("test_x", Outcome.SKIPPED, "cis:1.1")], CATALOGUE[:1])
    assert (row.status, row.reason) == (Status.NOT_APPLICABLE, "no db")


def test_table_lists_every_control_with_reasons_below_non_passing(
    rows: list[ControlResult],
) -> None:
    table = render_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["control", "status", "title"]
    assert any(line.startswith("cis:1.1") and " pass " in line for line in lines)
    failed = next(
        i for i, line in enumerate(lines) if line.startswith("devsec:postgres-11")
    )
    assert " fail " in lines[failed]
    assert "failed: test_tls on db2" in lines[failed + 1]
    assert lines[-1] == ("6 controls: 2 pass, 1 fail, 1 not applicable, 2 not covered")
    assert max(len(line) for line in lines) <= 100


def test_junit_has_a_case_per_control_with_failures_and_skips(
    rows: list[ControlResult],
) -> None:
    root = ET.fromstring(render_junit(rows, "inventories/prod.py"))  # noqa: S314
    suites = {suite.attrib["name"]: suite for suite in root.iter("testsuite")}
    assert sorted(suites) == ["cis", "devsec"]
    assert suites["cis"].attrib["tests"] == "4"
    assert suites["cis"].attrib["skipped"] == "2"
    assert suites["devsec"].attrib["failures"] == "1"
    cases = {case.attrib["name"].split()[0]: case for case in root.iter("testcase")}
    assert len(cases) == 6
    failure = cases["devsec:postgres-11"].find("failure")
    assert failure is not None
    assert "test_tls on db2: assert 'off' == 'on'" in (failure.text or "")
    out = cases["devsec:postgres-11"].find("system-out")
    assert out is not None
    assert "deviation from the baseline: older releases want off" in (out.text or "")
    skipped = cases["cis:7.1"].find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "not applicable: no replication"
    assert cases["cis:1.1"].find("failure") is None
    assert cases["cis:1.1"].find("skipped") is None


def test_html_is_self_contained_and_escaped() -> None:
    evil = Control("cis:1.1", "<script>alert(1)</script>")
    rows = summarise([run("test_<b>", Outcome.FAILED, "cis:1.1")], (evil,))
    page = render_html(rows, "inv<1>.py", when=datetime(2026, 12, 4, tzinfo=UTC))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "test_&lt;b&gt; on db1" in page
    assert "inv&lt;1&gt;.py" in page
    assert "2026-12-04 00:00 UTC" in page
    for outside in ("<link", "src=", "http://", "https://", "@import"):
        assert outside not in page
    assert '<td class="fail">fail</td>' in page


def test_a_failed_check_naming_no_control_still_fails_the_audit() -> None:
    from pgfortress.audit.cli import failed_without_control
    from pgfortress.audit.results import CheckResult, Outcome

    results = [
        CheckResult("test_firewall_loaded", "db1", Outcome.FAILED, (), "no table"),
        CheckResult("test_firewall_loaded", "gw1", Outcome.PASSED, ()),
        CheckResult("test_tls", "db1", Outcome.FAILED, ("cis:6.8",), "expired"),
        CheckResult("test_other", "db1", Outcome.SKIPPED, (), "not a db host"),
    ]
    assert [(r.check, r.host) for r in failed_without_control(results)] == [
        ("test_firewall_loaded", "db1")
    ]
