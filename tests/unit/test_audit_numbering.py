"""Whose numbers the cis: ids are, and hosts running another PostgreSQL major."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgfortress.audit import CheckResult, Control, Outcome, summarise
from pgfortress.audit.cli import host_majors
from pgfortress.audit.numbering import CIS_BENCHMARK, numbering_note
from pgfortress.audit.plugin import ControlCollector
from pgfortress.audit.report import render_html, render_junit

BENCHMARK_ONLY = "cis: ids are numbered after the CIS PostgreSQL 15 Benchmark"


def test_hosts_on_the_benchmarks_major_need_no_more_than_its_name() -> None:
    assert CIS_BENCHMARK == "CIS PostgreSQL 15 Benchmark"
    assert numbering_note({}) == BENCHMARK_ONLY
    assert numbering_note({"db1": 15, "db2": 15}) == BENCHMARK_ONLY


def test_hosts_on_other_majors_are_named_per_major_in_order() -> None:
    note = numbering_note({"db3": 17, "db1": 15, "db2": 17, "old1": 13})
    assert note == (
        BENCHMARK_ONLY + "; old1 runs PostgreSQL 13, whose benchmark (CIS PostgreSQL "
        "13 Benchmark) numbers some of these recommendations differently: match "
        "them by title; db2, db3 run PostgreSQL 17, whose benchmark (CIS "
        "PostgreSQL 17 Benchmark) numbers some of these recommendations "
        "differently: match them by title"
    )


def test_each_hosts_major_comes_from_the_check_that_recorded_it() -> None:
    results = [
        CheckResult("test_version", "db1", Outcome.PASSED, ("devsec:postgres-02",)),
        CheckResult("test_version", "db2", Outcome.FAILED, (), "x", 17),
        CheckResult("test_other", "db2", Outcome.PASSED, ()),
        CheckResult("test_version", "db3", Outcome.PASSED, (), "", 15),
    ]
    assert host_majors(results) == {"db2": 17, "db3": 15}


def test_junit_and_html_carry_the_note() -> None:
    rows = summarise(
        [CheckResult("test_x", "db1", Outcome.PASSED, ("cis:1.1",))],
        (Control("cis:1.1", "one"), Control("devsec:postgres-01", "two")),
    )
    note = numbering_note({"db1": 17})
    root = ET.fromstring(render_junit(rows, "inv.py", note))  # noqa: S314
    suites = {suite.attrib["name"]: suite for suite in root.iter("testsuite")}
    found = suites["cis"].find("properties/property[@name='numbering']")
    assert found is not None
    assert found.attrib["value"] == note
    assert suites["devsec"].find("properties") is None
    assert len(list(root.iter("testcase"))) == 2
    page = render_html(
        rows, "inv.py", when=datetime(2026, 12, 5, tzinfo=UTC), note=note
    )
    assert f"<p>{note}.</p>" in page
    # Without a note neither output changes.
    assert "properties" not in render_junit(rows, "inv.py")
    assert "numbered after" not in render_html(rows, "inv.py")


CHECK = """
def test_version(record_property):
    record_property("postgres_major", 17)

def test_text_property(record_property):
    record_property("postgres_major", "17")

def test_none():
    pass
"""


def test_the_collector_reads_the_recorded_major(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("")
    (tmp_path / "test_recorded_major.py").write_text(CHECK)
    collector = ControlCollector()
    code = pytest.main(
        [
            str(tmp_path),
            "-c",
            os.devnull,
            f"--rootdir={tmp_path}",
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:terminal",
        ],
        plugins=[collector],
    )
    assert code == 0
    got = {result.check: result.postgres_major for result in collector.results}
    assert got == {"test_version": 17, "test_text_property": None, "test_none": None}
