"""The control catalogue, and the host checks' markers measured against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgfortress.audit import (
    CATALOGUE,
    AuditError,
    Coverage,
    coverage,
    declared_controls,
    find_checks,
)
from pgfortress.audit.catalogue import control
from pgfortress.cli import main
from pgfortress.errors import PgFortressError

HOST_CHECKS = Path(__file__).resolve().parents[1] / "host"


def test_ids_are_unique_and_well_formed() -> None:
    ids = [entry.id for entry in CATALOGUE]
    assert len(ids) == len(set(ids))
    for entry in CATALOGUE:
        assert re.fullmatch(r"cis:\d(\.\d{1,2}){1,2}|devsec:postgres-\d\d", entry.id)


def test_every_devsec_control_is_there_once() -> None:
    devsec = [entry.number for entry in CATALOGUE if entry.framework == "devsec"]
    assert devsec == [f"postgres-{n:02d}" for n in range(1, 21)]


def test_every_cis_section_is_there() -> None:
    numbers = [entry.number for entry in CATALOGUE if entry.framework == "cis"]
    assert {number.split(".")[0] for number in numbers} == set("12345678")
    logging = [n for n in numbers if n.startswith("3.1.")]
    assert logging == [f"3.1.{n}" for n in range(2, 27)]


def test_entries_without_checks_say_why() -> None:
    for entry in CATALOGUE:
        if entry.coverage is Coverage.CHECKED:
            assert not entry.reason, entry.id
        else:
            assert len(entry.reason) > 20, entry.id


def test_the_baseline_expectations_pgfortress_inverts_are_explained() -> None:
    deviations = {e.id: e.deviation for e in CATALOGUE if e.deviation}
    assert "ssl = off" in deviations["devsec:postgres-11"]
    assert "md5" in deviations["devsec:postgres-07"]
    assert "md5" in deviations["devsec:postgres-14"]


def test_an_unknown_id_is_refused_with_the_expected_shape() -> None:
    with pytest.raises(AuditError, match=r"'cis:99' is not a control.*cis:3\.1\.20"):
        control("cis:99")


def test_every_checked_control_has_a_host_check() -> None:
    declared = declared_controls(HOST_CHECKS)
    missing = [
        entry.id
        for entry in CATALOGUE
        if entry.coverage is Coverage.CHECKED and entry.id not in declared
    ]
    assert missing == []


def test_host_checks_name_only_catalogue_controls_meant_to_be_checked() -> None:
    by_id = {entry.id: entry for entry in CATALOGUE}
    for control_id, checks in declared_controls(HOST_CHECKS).items():
        assert control_id in by_id, (control_id, checks)
        assert by_id[control_id].coverage is Coverage.CHECKED, (control_id, checks)


def test_coverage_counts_controls_with_a_check() -> None:
    some = {CATALOGUE[0].id, CATALOGUE[1].id}
    assert coverage(some) == (2, len(CATALOGUE), round(200 / len(CATALOGUE), 1))
    assert coverage(set())[0] == 0


def test_declared_controls_reads_aliases_params_and_module_marks(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "from pytest import mark\n"
        "control = pytest.mark.control\n"
        "pytestmark = pytest.mark.control('cis:1.1')\n"
        "@control('cis:1.2')\n"
        "def test_a(): pass\n"
        "@pytest.mark.parametrize(\n"
        "    'x', [pytest.param(1, marks=mark.control('cis:1.3'))]\n"
        ")\n"
        "def test_b(x): pass\n"
        "def helper(): pass\n"
    )
    assert declared_controls(tmp_path) == {
        "cis:1.1": ["test_x::test_a", "test_x::test_b"],
        "cis:1.2": ["test_x::test_a"],
        "cis:1.3": ["test_x::test_b"],
    }


def test_find_checks_prefers_the_clone_and_refuses_a_bare_directory(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "clone"
    (clone / "tests" / "host").mkdir(parents=True)
    (clone / "tests" / "host" / "conftest.py").write_text("")
    assert find_checks(cwd=clone) == clone / "tests" / "host"
    with pytest.raises(AuditError, match=r"--checks .*no conftest\.py"):
        find_checks(tmp_path)


def test_list_prints_every_control_and_the_coverage_without_a_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", "--list", f"--checks={HOST_CHECKS}"]) == 0
    out = capsys.readouterr().out
    for entry in CATALOGUE:
        assert f"\n{entry.id} " in "\n" + out
    checked, total, percent = coverage(set(declared_controls(HOST_CHECKS)))
    assert out.endswith(
        f"coverage: {checked} of {total} controls have a host check ({percent} %)\n"
    )


def test_audit_without_an_inventory_says_what_to_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", f"--checks={HOST_CHECKS}"]) == 2
    assert "name the inventory to audit" in capsys.readouterr().err


def test_the_audit_package_exports() -> None:
    import pgfortress.audit

    assert sorted(pgfortress.audit.__all__) == [
        "AuditError",
        "CATALOGUE",
        "CheckResult",
        "Control",
        "ControlResult",
        "Coverage",
        "Outcome",
        "Status",
        "coverage",
        "declared_controls",
        "find_checks",
        "render_html",
        "render_junit",
        "render_table",
        "run_checks",
        "summarise",
    ]
    assert issubclass(pgfortress.audit.AuditError, PgFortressError)
