"""The pytest plugin: outcomes and markers read from pytest itself, no host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgfortress.audit import AuditError, CheckResult, Outcome
from pgfortress.audit.plugin import ControlCollector
from pgfortress.audit.runner import run_checks

CHECKS = """
import pytest

control = pytest.mark.control


@control("cis:1.1")
def test_passes():
    pass


@control("cis:1.2", "devsec:postgres-01")
def test_fails():
    assert 1 == 2, "one is not two"


@control("cis:1.3")
def test_is_skipped():
    pytest.skip("no PostgreSQL on this host")


@pytest.fixture
def broken():
    raise RuntimeError("setup went wrong")


@control("cis:6.8")
def test_setup_fails(broken):
    pass


@pytest.mark.parametrize("x", [pytest.param(1, marks=control("cis:3.1.16")), 2])
def test_param(x):
    pass
"""


def collect(directory: Path, source: str) -> tuple[int, ControlCollector, list[str]]:
    (directory / "conftest.py").write_text("")
    # One module name per test: pytest keeps imported test modules by name.
    (directory / f"test_{directory.name}.py").write_text(source)
    progress: list[str] = []

    def note(done: int, total: int, result: CheckResult) -> None:
        progress.append(f"{done}/{total} {result.check} {result.outcome.value}")

    collector = ControlCollector(note)
    code = pytest.main(
        [
            str(directory),
            "-c",
            os.devnull,
            f"--rootdir={directory}",
            "--import-mode=importlib",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:terminal",
            "--strict-markers",
        ],
        plugins=[collector],
    )
    return int(code), collector, progress


def test_each_outcome_is_recorded_with_its_controls(tmp_path: Path) -> None:
    code, collector, progress = collect(tmp_path, CHECKS)
    assert code == 1
    got = {r.check: (r.outcome, r.controls, r.message) for r in collector.results}
    assert got == {
        "test_passes": (Outcome.PASSED, ("cis:1.1",), ""),
        "test_fails": (
            Outcome.FAILED,
            ("cis:1.2", "devsec:postgres-01"),
            "AssertionError: one is not two",
        ),
        "test_is_skipped": (
            Outcome.SKIPPED,
            ("cis:1.3",),
            "no PostgreSQL on this host",
        ),
        "test_setup_fails": (
            Outcome.FAILED,
            ("cis:6.8",),
            "RuntimeError: setup went wrong",
        ),
        "test_param[1]": (Outcome.PASSED, ("cis:3.1.16",), ""),
        "test_param[2]": (Outcome.PASSED, (), ""),
    }
    assert all(result.host == "local" for result in collector.results)
    assert progress[0] == "1/6 test_passes passed"
    assert progress[-1] == "6/6 test_param[2] passed"


def test_an_unknown_control_id_stops_the_run_naming_the_check(tmp_path: Path) -> None:
    source = (
        "import pytest\n\n"
        "@pytest.mark.control('cis:3.1.99')\n"
        "def test_typo():\n"
        "    pass\n"
    )
    code, collector, _ = collect(tmp_path, source)
    assert code != 0
    assert collector.results == []
    with pytest.raises(AuditError) as raised:
        collector.raise_usage_error()
    message = str(raised.value)
    assert f"test_{tmp_path.name}.py::test_typo: unknown control id 'cis:3.1.99'" in (
        message
    )


def test_an_inventory_host_that_is_not_there_is_refused_before_any_run(
    tmp_path: Path,
) -> None:
    inventory = tmp_path / "inventory.py"
    inventory.write_text("db = [('db1', {'ssh_hostname': '192.0.2.10'})]\n")
    with pytest.raises(AuditError, match=r"--host db9: not in .*its hosts are db1"):
        run_checks(inventory, tmp_path, hosts=["db9"])
    with pytest.raises(AuditError, match=r"inventory .*missing\.py: no such file"):
        run_checks(tmp_path / "missing.py", tmp_path)
