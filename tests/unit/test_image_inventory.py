"""The image inventory: the image's promises at stage image, identity after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pgfortress.audit.inventory import inventory_hosts
from pgfortress.lab import lab_dir
from pgfortress.lab.addressing import Allocation
from pgfortress.lab.paths import LabLayout
from pgfortress.lab.state import plan_state, write_state
from pgfortress.spec import from_host_data

INVENTORY = Path(__file__).parents[2] / "pgfortress/image/lab_inventory.py"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PGFORTRESS_HOME", str(tmp_path))
    monkeypatch.setenv("PGFORTRESS_LAB", "iimage")
    monkeypatch.delenv("PGFORTRESS_DATABASE_ROLES", raising=False)
    layout = LabLayout(lab_dir("iimage"))
    layout.dir.mkdir(parents=True)
    write_state(plan_state("iimage", ("db1",), Allocation(9), layout), "ready")
    return layout.dir


def _db1(monkeypatch: pytest.MonkeyPatch, stage: str) -> dict[str, Any]:
    monkeypatch.setenv("PGFORTRESS_IMAGE_STAGE", stage)
    hosts = inventory_hosts(INVENTORY)
    assert list(hosts) == ["db1"]
    assert hosts["db1"]["_groups"] == ["db"]
    return hosts["db1"]


def test_the_image_stage_names_no_network_and_no_identity(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _db1(monkeypatch, "image")
    spec = from_host_data("db1", data)
    assert spec.listen == ["lo"]
    assert spec.hba == []
    assert spec.probe_role is None
    assert spec.tls.ca_dir == lab / "image" / "ca"
    assert data["ssh_hostname"] == "10.213.9.10"


def test_the_identity_stage_lets_the_control_machine_in_over_tls(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFORTRESS_DATABASE_ROLES", "specs/lab.yml")
    data = _db1(monkeypatch, "identity")
    spec = from_host_data("db1", data)
    assert spec.listen == ["eth0"]
    assert {rule.address for rule in spec.hba} == {
        "10.213.9.1/32",
        "fd70:6766:213:9::1/128",
    }
    assert {rule.method for rule in spec.hba} == {"scram-sha-256"}
    assert spec.tls.ca_dir == lab / "ca"
    assert spec.database_roles == Path("specs/lab.yml")


def test_an_unknown_stage_is_refused(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFORTRESS_IMAGE_STAGE", "prod")
    with pytest.raises(ValueError, match="write image or identity"):
        inventory_hosts(INVENTORY)
