"""End to end: ``pgfortress audit`` against a deployed lab host, then a weakened one.

One lab with db1 only per platform: Debian 12 with PostgreSQL 15, then
Debian 13 with PostgreSQL 17. PostgreSQL is deployed twice (the second run changes
nothing), the audit must report every control of the catalogue with all the
applicable ones passing; then the host is weakened on purpose, one fault at a
time, the audit must fail exactly the controls that fault breaks, and a
re-deploy puts the host right again.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgfortress import tls
from pgfortress.audit import CATALOGUE, Coverage
from pgfortress.audit.numbering import numbering_note
from pgfortress.lab import LabState
from pgfortress.lab.platforms import platform_named

from ._platform_labs import platform_lab
from .conftest import BIN, REPO, DeployRun, lab_name, run_deploy, ssh

pytestmark = pytest.mark.lab

# Each platform on its own lab (the fixture is per module).
LAB_NAMES = {"debian12": lab_name("audit"), "debian13": lab_name("audit13")}
EXPECTED_STATUS = {
    Coverage.CHECKED: "pass",
    Coverage.NOT_APPLICABLE: "not applicable",
    Coverage.NOT_COVERED: "not covered",
}


@dataclass(frozen=True)
class Deployed:
    lab: LabState
    first: DeployRun
    second: DeployRun

    @property
    def config_dir(self) -> str:
        major = platform_named(self.lab.platform).postgres_major
        return f"/etc/postgresql/{major}/main"


@dataclass(frozen=True)
class AuditRun:
    returncode: int
    output: str
    statuses: dict[str, str]
    html: str

    def failing(self) -> set[str]:
        return {cid for cid, status in self.statuses.items() if status == "fail"}


def _deploy_twice(state: LabState) -> Deployed:
    tls.init_ca(state.dir / "ca", f"pgfortress lab {state.name} CA")
    first = run_deploy(state, "deploys/postgres.py")
    assert first.returncode == 0, first.output[-4000:]
    second = run_deploy(state, "deploys/postgres.py")
    assert second.returncode == 0, second.output[-4000:]
    return Deployed(state, first, second)


@pytest.fixture(scope="module", params=list(LAB_NAMES))
def deployed(request: pytest.FixtureRequest) -> Iterator[Deployed]:
    # The Debian 13 lab is made while the Debian 12 tests run.
    yield from platform_lab(request, LAB_NAMES, ["db1"], _deploy_twice)


def run_audit(lab: LabState, out: Path) -> AuditRun:
    """``pgfortress audit inventories/lab.py`` as a user runs it from a clone."""
    junit, page = out / "audit.xml", out / "audit.html"
    result = subprocess.run(
        [
            str(BIN / "pgfortress"),
            "audit",
            "inventories/lab.py",
            f"--junit={junit}",
            f"--html={page}",
        ],
        cwd=REPO,
        env=os.environ | {"PGFORTRESS_LAB": lab.name},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert junit.is_file(), output[-4000:]
    statuses = {}
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 - our own file
        control_id = case.attrib["name"].split(" ", 1)[0]
        if case.find("failure") is not None:
            statuses[control_id] = "fail"
        elif (skipped := case.find("skipped")) is not None:
            statuses[control_id] = skipped.attrib["message"].split(":", 1)[0]
        else:
            statuses[control_id] = "pass"
    return AuditRun(result.returncode, output, statuses, page.read_text())


@pytest.fixture(scope="module")
def baseline(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    return run_audit(deployed.lab, tmp_path_factory.mktemp("baseline"))


def test_second_deploy_changes_nothing(deployed: Deployed) -> None:
    assert deployed.first.changed, deployed.first.output[-3000:]
    assert deployed.second.changed == [], "\n".join(deployed.second.changed)


def test_every_control_is_reported_and_the_applicable_ones_pass(
    deployed: Deployed, baseline: AuditRun
) -> None:
    assert baseline.returncode == 0, baseline.output[-6000:]
    assert set(baseline.statuses) == {entry.id for entry in CATALOGUE}
    for entry in CATALOGUE:
        assert baseline.statuses[entry.id] == EXPECTED_STATUS[entry.coverage], (
            entry.id,
            baseline.output[-6000:],
        )
        assert f"\n{entry.id} " in baseline.output
    assert "[  1/" in baseline.output, "no progress lines"
    assert "host checks naming no control: " in baseline.output
    # The cis: numbers are the PostgreSQL 15 benchmark's; a PostgreSQL 17 host
    # is named as running another major.
    major = platform_named(deployed.lab.platform).postgres_major
    assert f"\n{numbering_note({'db1': major})}\n" in baseline.output
    assert ("db1 runs PostgreSQL 17" in baseline.output) == (major == 17)


def test_the_html_report_is_one_self_contained_file(baseline: AuditRun) -> None:
    for entry in CATALOGUE:
        assert f'id="{entry.id}"' in baseline.html
    for outside in ("<script", "<link", "src=", "@import", "url("):
        assert outside not in baseline.html


# (name, command that weakens db1, controls that must then fail); {config} is
# the cluster's configuration directory on the lab's platform.
WEAKENINGS = [
    pytest.param(
        "sed -i '0,/^local/s//host all all 127.0.0.1\\/32 trust\\n&/' "
        "{config}/pg_hba.conf && "
        "runuser -u postgres -- psql -X -q -c 'SELECT pg_reload_conf()'",
        {"cis:5.2", "devsec:postgres-14", "devsec:postgres-15"},
        id="trust-line-in-pg_hba",
    ),
    pytest.param(
        "chmod 0644 {config}/tls/server.key",
        {"cis:6.8", "devsec:postgres-10"},
        id="world-readable-server-key",
    ),
]


@pytest.mark.parametrize(("weaken", "should_fail"), WEAKENINGS)
def test_a_weakened_host_fails_exactly_the_controls_it_breaks(
    deployed: Deployed,
    baseline: AuditRun,
    tmp_path: Path,
    weaken: str,
    should_fail: set[str],
) -> None:
    assert baseline.returncode == 0, "the unweakened host must pass first"
    ssh(deployed.lab, "db1", weaken.format(config=deployed.config_dir))
    try:
        weakened = run_audit(deployed.lab, tmp_path)
    finally:
        restored = run_deploy(deployed.lab, "deploys/postgres.py")
    assert restored.returncode == 0, restored.output[-4000:]
    assert restored.changed, "the re-deploy found nothing to put right"
    assert weakened.returncode == 1, weakened.output[-6000:]
    assert weakened.failing() == should_fail, weakened.output[-6000:]
    for control_id in should_fail:
        assert f"\n{control_id} " in weakened.output
    passing_before = {c for c, s in baseline.statuses.items() if s == "pass"}
    for control_id in passing_before - should_fail:
        assert weakened.statuses[control_id] == "pass", control_id


def test_the_restored_host_passes_again_and_stays_put(
    deployed: Deployed, tmp_path: Path
) -> None:
    again = run_audit(deployed.lab, tmp_path)
    assert again.returncode == 0, again.output[-6000:]
    assert again.failing() == set()
    settled = run_deploy(deployed.lab, "deploys/postgres.py")
    assert settled.returncode == 0, settled.output[-4000:]
    assert settled.changed == [], "\n".join(settled.changed)
