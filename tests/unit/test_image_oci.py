"""The OCI archive is a valid image layout whose digests match its blobs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from pgfortress.image import ImageError
from pgfortress.image.export import (
    BuildRecord,
    artifacts_for,
    artifacts_from_rootfs,
    read_build_record,
    write_build_record,
)
from pgfortress.image.manifest import manifest_document, parse_packages
from pgfortress.image.oci import gzip_layer, write_oci_archive

LABELS = {"dev.pgfortress.role": "db"}
CREATED = "2026-12-05T00:00:00Z"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_gzip_layer_digests_both_sides() -> None:
    plain = b"layer bytes " * 100_000
    target = io.BytesIO()
    digests = gzip_layer(io.BytesIO(plain), target)
    packed = target.getvalue()
    assert gzip.decompress(packed) == plain
    assert digests.diff_id == _sha(plain)
    assert digests.blob.digest == _sha(packed)
    assert digests.blob.size == len(packed)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    rootfs = tmp_path / "x.rootfs.tar.zst"
    subprocess.run(
        ["tar", "--zstd", "--numeric-owner", "-C", str(root), "-cf", str(rootfs), "."],
        check=True,
    )
    out = tmp_path / "x.oci.tar"
    write_oci_archive(rootfs, out, "pgfortress-db-debian12", LABELS, CREATED)
    return rootfs, out


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg()
        }


def test_archive_is_an_oci_layout_with_matching_digests(
    archive: tuple[Path, Path],
) -> None:
    rootfs, out = archive
    blobs = _members(out)
    assert json.loads(blobs["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(blobs["index.json"])
    (entry,) = index["manifests"]
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "pgfortress-db-debian12"
    }
    manifest_bytes = blobs[f"blobs/sha256/{entry['digest'].split(':')[1]}"]
    assert _sha(manifest_bytes) == entry["digest"]
    manifest = json.loads(manifest_bytes)
    config_bytes = blobs[f"blobs/sha256/{manifest['config']['digest'][7:]}"]
    layer_bytes = blobs[f"blobs/sha256/{manifest['layers'][0]['digest'][7:]}"]
    for descriptor, data in (
        (manifest["config"], config_bytes),
        (manifest["layers"][0], layer_bytes),
    ):
        assert (descriptor["digest"], descriptor["size"]) == (_sha(data), len(data))
    config = json.loads(config_bytes)
    plain = subprocess.run(
        ["zstd", "-dcq", str(rootfs)], capture_output=True, check=True
    ).stdout
    assert config["rootfs"] == {"type": "layers", "diff_ids": [_sha(plain)]}
    assert gzip.decompress(layer_bytes) == plain
    assert (config["os"], config["created"]) == ("linux", CREATED)
    assert config["config"]["Labels"] == LABELS


def test_a_rootfs_zstd_cannot_read_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rootfs.tar.zst"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageError, match="zstd could not read"):
        write_oci_archive(bad, tmp_path / "bad.oci.tar", "x", {}, CREATED)
    assert not (tmp_path / "bad.oci.tar").exists()


def test_artifact_names_follow_the_tarball(tmp_path: Path) -> None:
    files = artifacts_for(tmp_path, "db", "debian12")
    assert files.rootfs.name == "pgfortress-db-debian12.rootfs.tar.zst"
    assert files.oci.name == "pgfortress-db-debian12.oci.tar"
    assert files.manifest.name == "pgfortress-db-debian12.manifest.json"
    assert artifacts_from_rootfs(files.rootfs) == files
    with pytest.raises(ImageError, match=r"ends in \.rootfs\.tar\.zst"):
        artifacts_from_rootfs(tmp_path / "other.tar.zst")


RECORD = BuildRecord(
    role="db",
    platform="debian12",
    postgres_version=15,
    commit="abc123",
    created=CREATED,
    keep_secrets=False,
    database_roles="specs/lab.yml",
)


def test_build_record_round_trips_and_a_missing_one_says_where(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.build.json"
    write_build_record(path, RECORD)
    assert read_build_record(path) == RECORD
    with pytest.raises(ImageError, match="missing; verify the tarball"):
        read_build_record(tmp_path / "none.build.json")
    path.write_text('{"role": "db"}')
    with pytest.raises(ImageError, match="not a build record"):
        read_build_record(path)


def test_manifest_carries_image_digests_packages_and_verdict() -> None:
    packages = parse_packages("postgresql-15\t15.8-0+deb12u1\nzlib1g\t1:1.2.13\n\n")
    document = manifest_document(
        RECORD,
        {"x.rootfs.tar.zst": "aa", "x.oci.tar": "bb"},
        packages,
        {"deployed": {"counts": {"pass": 41}, "failing": []}},
        CREATED,
    )
    assert document["image"]["role"] == "db"
    assert document["image"]["commit"] == "abc123"
    assert document["artifacts"]["x.oci.tar"] == {"sha256": "bb"}
    assert document["packages"] == {
        "postgresql-15": "15.8-0+deb12u1",
        "zlib1g": "1:1.2.13",
    }
    assert document["verification"]["audits"]["deployed"]["failing"] == []
