"""An OCI image archive of a root filesystem: one layer, written by hand.

The archive is a tar of an OCI image layout (image-spec 1.1):

    oci-layout                 {"imageLayoutVersion": "1.0.0"}
    index.json                 points at the manifest, tagged with the ref name
    blobs/sha256/<manifest>    config + one layer
    blobs/sha256/<config>      architecture, os, rootfs.diff_ids, history
    blobs/sha256/<layer>       the root filesystem, a gzip-compressed tar

``diff_ids`` hold the digest of the uncompressed layer, the manifest the digest
of the compressed one; both are computed while the layer is streamed once.
``skopeo inspect oci-archive:<file>`` reads the result.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ._errors import ImageError

__all__ = [
    "Blob",
    "LayerDigests",
    "config_document",
    "gzip_layer",
    "index_document",
    "manifest_document",
    "write_oci_archive",
]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob: its digest and size."""

    digest: str
    size: int

    def descriptor(self, media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class LayerDigests:
    """The compressed layer as a blob and the digest of its uncompressed tar."""

    blob: Blob
    diff_id: str


def _blob(data: bytes) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def config_document(
    diff_id: str, created: str, labels: Mapping[str, str], architecture: str
) -> dict[str, Any]:
    """The image configuration: what runs it and the layer it is made of."""
    return {
        "architecture": architecture,
        "os": "linux",
        "created": created,
        "config": {
            "Cmd": ["/sbin/init"],
            "Labels": dict(labels),
            "StopSignal": "SIGRTMIN+3",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "pgfortress image build"}],
    }


def manifest_document(
    config: Blob, layer: Blob, annotations: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.descriptor(MEDIA_CONFIG),
        "layers": [layer.descriptor(MEDIA_LAYER)],
        "annotations": dict(annotations),
    }


def index_document(manifest: Blob, ref_name: str) -> dict[str, Any]:
    descriptor = manifest.descriptor(MEDIA_MANIFEST)
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    return {"schemaVersion": 2, "manifests": [descriptor]}


def gzip_layer(source: BinaryIO, target: BinaryIO) -> LayerDigests:
    """Compress ``source`` (a tar) into ``target``; digests of both sides."""
    plain, packed = hashlib.sha256(), hashlib.sha256()
    size = 0
    # wbits 31: the gzip container, as the layer media type says.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    while chunk := source.read(_CHUNK):
        plain.update(chunk)
        out = compressor.compress(chunk)
        packed.update(out)
        target.write(out)
        size += len(out)
    out = compressor.flush()
    packed.update(out)
    target.write(out)
    size += len(out)
    return LayerDigests(
        Blob("sha256:" + packed.hexdigest(), size), "sha256:" + plain.hexdigest()
    )


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    archive.addfile(info, io.BytesIO(data))


def write_oci_archive(
    rootfs_zst: Path,
    out: Path,
    ref_name: str,
    labels: Mapping[str, str],
    created: str,
    architecture: str = "amd64",
) -> str:
    """Write ``out`` from a zstd root filesystem tarball; the manifest digest."""
    layer_file = out.with_name(f".{out.name}.layer")
    try:
        with (
            subprocess.Popen(
                ["zstd", "-dcq", str(rootfs_zst)], stdout=subprocess.PIPE
            ) as unzstd,
            layer_file.open("wb") as target,
        ):
            assert unzstd.stdout is not None
            layer = gzip_layer(unzstd.stdout, target)  # type: ignore[arg-type]
        if unzstd.returncode != 0:
            raise ImageError(f"{rootfs_zst}: zstd could not read it")
        config_bytes = _canonical(
            config_document(layer.diff_id, created, labels, architecture)
        )
        config = _blob(config_bytes)
        manifest_bytes = _canonical(manifest_document(config, layer.blob, labels))
        manifest = _blob(manifest_bytes)
        index_bytes = _canonical(index_document(manifest, ref_name))
        scratch = out.with_name(f".{out.name}.{os.getpid()}")
        with tarfile.open(scratch, "w", format=tarfile.PAX_FORMAT) as archive:
            _add(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            _add(archive, "index.json", index_bytes)
            for blob, data in ((manifest, manifest_bytes), (config, config_bytes)):
                _add(archive, f"blobs/sha256/{blob.digest.split(':')[1]}", data)
            info = tarfile.TarInfo(f"blobs/sha256/{layer.blob.digest.split(':')[1]}")
            info.size, info.mode, info.mtime = layer.blob.size, 0o644, 0
            with layer_file.open("rb") as packed:
                archive.addfile(info, packed)
        scratch.replace(out)
    finally:
        layer_file.unlink(missing_ok=True)
    return manifest.digest
