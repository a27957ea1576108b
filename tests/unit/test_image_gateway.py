"""Gateway images without a host: names, deploys, cleaning, scan, first boot."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pgfortress.audit.inventory import inventory_hosts
from pgfortress.cli import main
from pgfortress.image import ImageError, clean_root, identity_plan, scan_root
from pgfortress.image._run import AuditOutcome
from pgfortress.image.bake import HOSTS, deploy_file
from pgfortress.image.export import artifacts_for
from pgfortress.image.firstboot import (
    GATEWAY_DROP_IN,
    install_first_boot,
    render_gateway_drop_in,
)
from pgfortress.image.identity import PLACEHOLDER_PASSWORD
from pgfortress.image.scan import (
    PRIVATE_KEY,
    SECRET_FILE,
    findings_in,
    kept_on_purpose,
    refuse_if_any,
    scan_tarball,
)
from pgfortress.image.verify_gateway import booted_problems, parse_facts
from pgfortress.lab import lab_dir
from pgfortress.lab.addressing import Allocation
from pgfortress.lab.paths import LabLayout
from pgfortress.lab.state import plan_state, write_state
from pgfortress.spec import from_host_data
from pgfortress.spec.gateway import gateway_from_host_data

REPO = Path(__file__).parents[2]
INVENTORY = REPO / "pgfortress/image/lab_inventory.py"
KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" * 2
    + "\n-----END PRIVATE KEY-----\n"
)
ETC = "etc/pgfortress-gateway"

# A gateway host as the bake leaves it, before the cleaning.
BAKED = {
    f"{ETC}/tls.key": KEY,
    f"{ETC}/tls.crt": "CERT",
    f"{ETC}/ca.crt": "BUILD CA",
    f"{ETC}/gateway.toml": "[database]\nhost = '127.0.0.1'\n",
    f"{ETC}/db-password": "placeholder",
    f"{ETC}/jwt-secret": "build secret",
    "var/lib/pgfortress-gateway/cache": "state",
    "opt/pgfortress-gateway/venv/bin/pgfortress-gateway": "#!/bin/sh\n",
    "opt/pgfortress-gateway/wheels/pgfortress_gateway-0.1.0-py3-none-any.whl": "w",
    "etc/systemd/system/pgfortress-gateway.service": "[Service]\n",
    "etc/ssh/ssh_host_ed25519_key": "private",
}
KEPT = [
    "opt/pgfortress-gateway/venv/bin/pgfortress-gateway",
    "opt/pgfortress-gateway/wheels/pgfortress_gateway-0.1.0-py3-none-any.whl",
    "etc/systemd/system/pgfortress-gateway.service",
]


@pytest.fixture
def baked(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for relative, text in BAKED.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / ETC).chmod(0o750)
    return root


def test_artifact_names_carry_the_role_and_platform(tmp_path: Path) -> None:
    files = artifacts_for(tmp_path, "gateway", "debian13")
    assert files.rootfs.name == "pgfortress-gateway-debian13.rootfs.tar.zst"
    assert files.oci.name == "pgfortress-gateway-debian13.oci.tar"
    assert files.manifest.name == "pgfortress-gateway-debian13.manifest.json"


@pytest.mark.parametrize(
    ("role", "roles", "deploy"),
    [
        ("db", None, "postgres.py"),
        ("db", "specs/lab.yml", "site.py"),
        ("gateway", None, "gateway.py"),
    ],
)
def test_each_role_bakes_with_the_deploy_a_user_runs(
    role: str, roles: str | None, deploy: str
) -> None:
    assert deploy_file(REPO, role, roles) == REPO / "deploys" / deploy


def test_each_role_is_baked_on_the_host_of_its_inventory_group() -> None:
    assert HOSTS == {"db": "db1", "gateway": "gw1"}


def test_a_missing_deploy_says_to_run_from_a_clone(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="from a clone of pgfortress"):
        deploy_file(tmp_path, "gateway", None)


def test_the_cleaning_empties_the_gateway_s_configuration(baked: Path) -> None:
    clean_root(baked, identity_plan(None, gateway=True))
    assert sorted(p.name for p in (baked / ETC).iterdir()) == []
    assert (baked / ETC).stat().st_mode & 0o777 == 0o750
    assert list((baked / "var/lib/pgfortress-gateway").iterdir()) == []
    for relative in KEPT:
        assert (baked / relative).read_text() == BAKED[relative], relative
    assert scan_root(baked) == []


def test_keep_secrets_keeps_the_token_secret_and_never_the_key(baked: Path) -> None:
    clean_root(baked, identity_plan(None, gateway=True, keep_secrets=True))
    assert sorted(p.name for p in (baked / ETC).iterdir()) == ["jwt-secret"]
    assert scan_root(baked, keep_secrets=True) == []
    # Without --keep-secrets on record, the same root is refused.
    assert [f.path for f in scan_root(baked)] == [f"{ETC}/jwt-secret"]


def test_a_db_plan_leaves_gateway_files_alone() -> None:
    plan = identity_plan(15)
    assert not any("pgfortress-gateway" in pattern for pattern in plan.remove)


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        (f"{ETC}/jwt-secret", True),
        (f"{ETC}/db-password", False),
        (f"{ETC}/gateway.toml", False),
        (f"{ETC}/tls.key", False),
    ],
)
def test_keep_secrets_allows_only_the_token_secret(path: str, kept: bool) -> None:
    (found,) = findings_in(path, b"x")
    assert found.control == SECRET_FILE
    assert kept_on_purpose(found, keep_secrets=True) is kept
    assert kept_on_purpose(found, keep_secrets=False) is False
    (key,) = findings_in("srv/x", KEY.encode())
    assert kept_on_purpose(key, keep_secrets=True) is False


def test_a_world_readable_gateway_key_names_both_controls(tmp_path: Path) -> None:
    root = tmp_path / "root"
    key = root / ETC / "tls.key"
    key.parent.mkdir(parents=True)
    key.write_text(KEY)
    key.chmod(0o644)
    tarball = tmp_path / "x.rootfs.tar.zst"
    subprocess.run(
        ["tar", "--zstd", "-C", str(root), "-cf", str(tarball), "."], check=True
    )
    for found in (scan_root(root, keep_secrets=True), scan_tarball(tarball, True)):
        assert {f.control for f in found} == {PRIVATE_KEY, SECRET_FILE}
        assert all("readable by everyone (0644)" in f.reason for f in found)
    with pytest.raises(ImageError) as refused:
        refuse_if_any(scan_root(root), "out/x.rootfs.tar.zst")
    message = str(refused.value)
    assert "failed controls: image:private-key, image:secret-file" in message
    assert f"/{ETC}/tls.key: holds a PEM private key (PKCS#8)" in message


def test_a_key_only_root_may_read_is_not_called_world_readable() -> None:
    (found,) = findings_in(f"{ETC}/tls.key", b"", 0o100640)
    assert "everyone" not in found.reason


def test_the_gateway_waits_for_its_configuration(tmp_path: Path) -> None:
    config = "/etc/pgfortress-gateway/gateway.toml"
    drop_in = render_gateway_drop_in(config)
    assert "[Unit]\n" in drop_in
    assert f"ConditionPathExists={config}\n" in drop_in
    install_first_boot(tmp_path, None, config)
    assert (tmp_path / GATEWAY_DROP_IN).read_text() == drop_in
    script = (tmp_path / "usr/local/lib/pgfortress/first-boot").read_text()
    assert "ssh-keygen -A" in script
    assert "/etc/postgresql" not in script


def test_a_db_image_gets_no_gateway_drop_in(tmp_path: Path) -> None:
    install_first_boot(tmp_path, 15)
    assert not (tmp_path / GATEWAY_DROP_IN).exists()


BOOTED = "enabled=enabled\nactive=inactive\ncondition=no\nvenv=yes\nfiles=\n"


def test_a_gateway_image_as_booted_is_installed_enabled_and_idle() -> None:
    facts = parse_facts(BOOTED)
    assert facts["files"] == ""
    assert booted_problems(facts, keep_secrets=False) == []


@pytest.mark.parametrize(
    ("change", "keep_secrets", "named"),
    [
        ({"venv": "no"}, False, "venv/bin/pgfortress-gateway is missing"),
        ({"enabled": "disabled"}, False, "not enabled"),
        ({"active": "failed", "condition": "yes"}, False, "neither running nor"),
        ({"files": "tls.key jwt-secret"}, False, "holds jwt-secret, tls.key"),
        ({"files": "jwt-secret db-password"}, True, "holds db-password before"),
    ],
)
def test_a_gateway_image_as_booted_is_refused_naming_why(
    change: dict[str, str], keep_secrets: bool, named: str
) -> None:
    facts = parse_facts(BOOTED) | change
    problems = booted_problems(facts, keep_secrets)
    assert any(named in problem for problem in problems), problems


def test_keep_secrets_lets_the_booted_image_carry_the_token_secret() -> None:
    facts = parse_facts(BOOTED) | {"files": "jwt-secret"}
    assert booted_problems(facts, keep_secrets=True) == []


def test_checks_naming_no_control_are_counted_from_the_audit() -> None:
    output = "x\nhost checks naming no control: 9 passed, 1 skipped\nwrote a\n"
    outcome = AuditOutcome(0, {}, output)
    assert outcome.unnamed_counts() == {"passed": 9, "skipped": 1}
    assert AuditOutcome(0, {}, "").unnamed_counts() == {}


def test_database_roles_belong_to_db_images_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["image", "build", "--role=gateway", f"--out={tmp_path}"]
    assert main([*argv, "--database-roles=specs/lab.yml"]) == 2
    assert "a gateway image has no database" in capsys.readouterr().err


@pytest.fixture
def gateway_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PGFORTRESS_HOME", str(tmp_path))
    monkeypatch.setenv("PGFORTRESS_LAB", "iimagegw")
    monkeypatch.setenv("PGFORTRESS_IMAGE_ROLE", "gateway")
    monkeypatch.delenv("PGFORTRESS_DATABASE_ROLES", raising=False)
    layout = LabLayout(lab_dir("iimagegw"))
    layout.dir.mkdir(parents=True)
    write_state(plan_state("iimagegw", ("db1", "gw1"), Allocation(9), layout), "ready")
    return layout.dir


def _hosts(monkeypatch: pytest.MonkeyPatch, stage: str) -> dict[str, dict[str, Any]]:
    monkeypatch.setenv("PGFORTRESS_IMAGE_STAGE", stage)
    return inventory_hosts(INVENTORY)


def test_the_bake_installs_the_gateway_without_starting_it(
    gateway_lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _hosts(monkeypatch, "image")["gw1"]
    assert data["_groups"] == ["gw"]
    spec = gateway_from_host_data("gw1", data)
    assert spec.start is False
    assert spec.database.host == "127.0.0.1"
    assert spec.database.password_secret == PLACEHOLDER_PASSWORD
    assert spec.ca_dir == gateway_lab / "image" / "ca"
    assert spec.allowed_networks == []


def test_the_check_gives_the_gateway_db1_and_lets_it_in(
    gateway_lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFORTRESS_DATABASE_ROLES", "specs/lab.yml")
    hosts = _hosts(monkeypatch, "identity")
    gateway = gateway_from_host_data("gw1", hosts["gw1"])
    assert gateway.start is True
    assert gateway.database.host == hosts["db1"]["ssh_hostname"]
    assert gateway.database.password_secret == "db1/authenticator"
    assert gateway.allowed_networks == ["10.213.9.1/32", "fd70:6766:213:9::1/128"]
    database = from_host_data("db1", hosts["db1"])
    app_rules = [rule for rule in database.hba if rule.databases == ["app"]]
    gw1 = hosts["gw1"]["ssh_hostname"]
    assert {rule.address for rule in app_rules} == {
        f"{gw1}/32",
        "fd70:6766:213:9::11/128",
    }


def test_a_db_image_s_inventory_has_no_gateway(
    gateway_lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFORTRESS_IMAGE_ROLE", "db")
    hosts = _hosts(monkeypatch, "identity")
    assert hosts["db1"]["_groups"] == ["db"]
    assert "gw1" not in hosts
    database = from_host_data("db1", hosts["db1"])
    assert not [rule for rule in database.hba if rule.databases == ["app"]]


def test_an_unknown_role_is_refused(
    gateway_lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGFORTRESS_IMAGE_ROLE", "web")
    with pytest.raises(ValueError, match="write db or gateway"):
        inventory_hosts(INVENTORY)
