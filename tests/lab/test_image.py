"""End to end: ``pgfortress image build`` bakes, exports and verifies a db image.

One build, as a user runs it from a clone: a db image with the lab's database
roles, baked on a lab host, cleaned, exported (zstd tarball and OCI archive),
booted on a fresh lab host, given its identity by a follow-up deploy run
twice (the second must change nothing), audited, and only then given its
manifest. Then a broken image, the same one whose first boot makes
PostgreSQL's key world-readable, must be rejected by ``pgfortress image
verify`` naming the controls, with no manifest written. Both use one lab
name, one lab at a time.

Then the same for a gateway image: baked with the gateway installed and
enabled but not started, booted next to a fresh db1, given its identity by
``deploys/gateway.py``, held to the gateway's host checks and called over
HTTPS with a token before it gets its manifest. A gateway image with a
world-readable TLS key put back into it is refused by the scan, naming the
file and the failed controls, before any host boots.

Everything runs once per platform, debian12 then debian13 (the module's
fixtures are per platform, and each build takes its lab down before the next
one starts); ``-k debian13`` runs one, ``-k gateway`` the gateway's tests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pgfortress.image.export import TAR_OPTIONS, Artifacts, artifacts_for, pack_rootfs
from pgfortress.image.firstboot import GATEWAY_DROP_IN, SCRIPT_PATH
from pgfortress.lab.platforms import Platform, platform_named

from .conftest import BIN, REPO, lab_name

pytestmark = pytest.mark.lab

LAB_NAME = lab_name("image")
GATEWAY_LAB = lab_name("imagegw")
TIMEOUT = 1800
PLATFORMS = ("debian12", "debian13")


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str


def pgfortress(*args: str) -> Run:
    result = subprocess.run(
        [str(BIN / "pgfortress"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(result.returncode, result.stdout + result.stderr)


@dataclass(frozen=True)
class Built:
    run: Run
    files: Artifacts
    platform: Platform

    @property
    def major(self) -> int:
        return self.platform.postgres_major


@pytest.fixture(scope="module", params=PLATFORMS)
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    platform = platform_named(request.param)
    out = tmp_path_factory.mktemp(f"images-{platform.name}")
    run = pgfortress(
        "image",
        "build",
        "--role=db",
        f"--platform={platform.name}",
        "--database-roles=specs/lab.yml",
        f"--out={out}",
        f"--lab={LAB_NAME}",
    )
    yield Built(run, artifacts_for(out, "db", platform.name), platform)
    shutil.rmtree(out, ignore_errors=True)


def _listing(tarball: Path) -> dict[str, tuple[str, int, str]]:
    """Path → (mode string, size, link target or "") of every member."""
    text = subprocess.run(
        ["tar", "--zstd", "--numeric-owner", "-tvf", str(tarball)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    members = {}
    for line in text.splitlines():
        mode, _, size, _, _, name = line.split(None, 5)
        # Device nodes show "major,minor" where files show their size.
        length = int(size) if size.isdigit() else 0
        path, _, target = name.partition(" -> ")
        members[path.removeprefix("./")] = (mode, length, target)
    return members


# What a built host carries that its image may not (docs/reference/images.md).
IDENTITY_FILES = {
    "root/.ssh/authorized_keys",
    "etc/apt/apt.conf.d/01pgfortress-proxy",
    "var/lib/dbus/machine-id",
    "var/lib/systemd/random-seed",
    "etc/ssl/private/ssl-cert-snakeoil.key",
    "usr/local/share/ca-certificates/pgfortress-ca.crt",
}
APT_LISTS = "var/lib/apt/lists/"


def _is_identity(name: str, major: int) -> bool:
    if name in IDENTITY_FILES or name.startswith("etc/ssh/ssh_host_"):
        return True
    emptied = (f"etc/postgresql/{major}/main/tls/", "tmp/", "var/log/journal/")
    if name.startswith(emptied):
        return name not in emptied
    if name.startswith(APT_LISTS):
        kept = (f"{APT_LISTS}lock", f"{APT_LISTS}partial/")
        return name != APT_LISTS and not name.startswith(kept)
    return False


def test_the_build_is_verified_and_gets_its_manifest(built: Built) -> None:
    assert built.run.returncode == 0, built.run.output[-6000:]
    files = built.files
    manifest = json.loads(files.manifest.read_text())
    for path in (files.rootfs, files.oci, files.build, files.junit, files.html):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["artifacts"][path.name] == {"sha256": digest}, path.name
    image = manifest["image"]
    assert (image["role"], image["platform"], image["postgres_version"]) == (
        "db",
        built.platform.name,
        built.major,
    )
    assert image["commit"] not in {"", "unknown"}
    major = built.major
    assert manifest["packages"][f"postgresql-{major}"].startswith(f"{major}.")
    booted = manifest["verification"]["audits"]["booted"]
    deployed = manifest["verification"]["audits"]["deployed"]
    assert set(booted["failing"]) <= {"devsec:postgres-06"}
    assert deployed["failing"] == []
    assert deployed["counts"]["pass"] >= 40
    first, second = deployed["follow_up_changes"]
    assert first > 0
    assert second == 0, "the second follow-up deploy changed something"


def test_the_tarball_carries_no_identity_and_starts_its_first_boot(
    built: Built,
) -> None:
    assert built.run.returncode == 0, built.run.output[-3000:]
    members = _listing(built.files.rootfs)
    forbidden = [name for name in members if _is_identity(name, built.major)]
    assert forbidden == []
    assert members["etc/machine-id"][1] == 0
    assert members[f"var/log/postgresql/postgresql-{built.major}-main.log"][1] == 0
    # The snakeoil pair's hash link (named after the build host) goes with it.
    snakeoil_links = [
        name
        for name, (_, _, target) in members.items()
        if target == "ssl-cert-snakeoil.pem"
    ]
    assert snakeoil_links == []
    assert members[SCRIPT_PATH][0] == "-rwxr-xr-x"
    wants = "etc/systemd/system/multi-user.target.wants/pgfortress-first-boot.service"
    assert wants in members


def test_the_oci_archive_is_read_by_skopeo(built: Built) -> None:
    assert built.run.returncode == 0, built.run.output[-3000:]
    result = subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{built.files.oci}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    inspected = json.loads(result.stdout)
    assert len(inspected["Layers"]) == 1
    assert inspected["Labels"]["dev.pgfortress.role"] == "db"
    assert (inspected["Os"], inspected["Architecture"]) == ("linux", "amd64")


def tampered_copy(
    built: Built, role: str, tmp_path: Path, tamper: Callable[[Path], None]
) -> Artifacts:
    """A copy of a built image with ``tamper`` applied to its unpacked root,
    next to its build record and a stale manifest that must not survive."""
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(
        ["tar", *TAR_OPTIONS, "-xpf", str(built.files.rootfs), "-C", str(root)],
        check=True,
        timeout=600,
    )
    tamper(root)
    files = artifacts_for(tmp_path, role, built.platform.name)
    pack_rootfs(root, files.rootfs)
    shutil.rmtree(root)
    shutil.copy(built.files.build, files.build)
    files.manifest.write_text("{}")
    return files


def test_an_image_whose_first_boot_leaves_a_world_readable_key_is_rejected(
    built: Built, tmp_path: Path
) -> None:
    assert built.run.returncode == 0, built.run.output[-3000:]

    # The fault: a first-boot script that installs PostgreSQL's key 0644.
    def leave_the_key_readable(root: Path) -> None:
        script = root / SCRIPT_PATH
        good = script.read_text()
        broken = good.replace('-m 600 "$work/server.key"', '-m 644 "$work/server.key"')
        assert broken != good
        script.write_text(broken)

    files = tampered_copy(built, "db", tmp_path, leave_the_key_readable)

    run = pgfortress("image", "verify", str(files.rootfs), f"--lab={LAB_NAME}")

    assert run.returncode == 2, run.output[-6000:]
    assert "verification failed: the image as booted" in run.output
    assert "cis:6.8" in run.output
    assert "devsec:postgres-10" in run.output
    assert not files.manifest.exists()


@pytest.fixture(scope="module", params=PLATFORMS)
def built_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    platform = platform_named(request.param)
    out = tmp_path_factory.mktemp(f"gateway-images-{platform.name}")
    run = pgfortress(
        "image",
        "build",
        "--role=gateway",
        f"--platform={platform.name}",
        f"--out={out}",
        f"--lab={GATEWAY_LAB}",
    )
    yield Built(run, artifacts_for(out, "gateway", platform.name), platform)
    shutil.rmtree(out, ignore_errors=True)


# The gateway's host checks (tests/host/test_gateway.py); the audit counts
# them with the other checks naming no control.
GATEWAY_CHECKS = 6


def test_the_gateway_image_serves_once_deployed_and_gets_its_manifest(
    built_gateway: Built,
) -> None:
    assert built_gateway.run.returncode == 0, built_gateway.run.output[-6000:]
    files = built_gateway.files
    manifest = json.loads(files.manifest.read_text())
    for path in (files.rootfs, files.oci, files.build, files.junit, files.html):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert manifest["artifacts"][path.name] == {"sha256": digest}, path.name
    image = manifest["image"]
    assert (image["role"], image["platform"], image["postgres_version"]) == (
        "gateway",
        built_gateway.platform.name,
        None,
    )
    assert "python3-venv" in manifest["packages"]
    assert not any(name.startswith("postgresql-1") for name in manifest["packages"])
    audits = manifest["verification"]["audits"]
    facts = audits["booted"]["facts"]
    assert (facts["enabled"], facts["active"], facts["condition"]) == (
        "enabled",
        "inactive",
        "no",
    )
    assert facts["files"] == ""
    deployed = audits["deployed"]
    assert deployed["failing"] == []
    assert deployed["host_checks"].get("failed", 0) == 0
    assert deployed["host_checks"]["passed"] >= GATEWAY_CHECKS
    first, second = deployed["follow_up_changes"]
    assert first > 0
    assert second == 0, "the second follow-up deploy changed something"
    requests = audits["requests"]
    assert requests["with_token"] == {"status": 200, "rows": 2}
    assert requests["without_token"] == {"status": 401}


def test_the_gateway_tarball_carries_the_service_and_no_identity(
    built_gateway: Built,
) -> None:
    assert built_gateway.run.returncode == 0, built_gateway.run.output[-3000:]
    members = _listing(built_gateway.files.rootfs)
    etc = "etc/pgfortress-gateway/"
    assert [name for name in members if name.startswith(etc)] == [etc]
    assert members[etc][0] == "drwxr-x---"
    assert [name for name in members if name.startswith("etc/ssh/ssh_host_")] == []
    assert "root/.ssh/authorized_keys" not in members
    assert members["etc/machine-id"][1] == 0
    assert members["opt/pgfortress-gateway/venv/bin/pgfortress-gateway"]
    assert any(name.endswith(".whl") for name in members)
    assert "etc/systemd/system/pgfortress-gateway.service" in members
    wants = "etc/systemd/system/multi-user.target.wants/pgfortress-gateway.service"
    assert wants in members
    assert GATEWAY_DROP_IN in members
    assert members[SCRIPT_PATH][0] == "-rwxr-xr-x"


KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg" * 2
    + "\n-----END PRIVATE KEY-----\n"
)


def test_a_gateway_image_with_a_world_readable_key_is_refused_by_the_scan(
    built_gateway: Built, tmp_path: Path
) -> None:
    assert built_gateway.run.returncode == 0, built_gateway.run.output[-3000:]

    # The fault: the gateway's TLS key left in the image, readable by all.
    def leave_a_readable_key(root: Path) -> None:
        key = root / "etc/pgfortress-gateway/tls.key"
        key.write_text(KEY)
        key.chmod(0o644)

    files = tampered_copy(built_gateway, "gateway", tmp_path, leave_a_readable_key)

    run = pgfortress("image", "verify", str(files.rootfs), f"--lab={GATEWAY_LAB}")

    assert run.returncode == 2, run.output[-6000:]
    assert "refusing to export" in run.output
    finding = (
        "/etc/pgfortress-gateway/tls.key: holds a PEM private key (PKCS#8), "
        "readable by everyone (0644) [image:private-key]"
    )
    assert finding in run.output
    assert "failed controls: image:private-key, image:secret-file" in run.output
    # Refused before any lab host booted.
    assert f"lab {GATEWAY_LAB} is up" not in run.output
    assert not files.manifest.exists()
