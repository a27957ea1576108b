"""``pgfortress image``: hardened images, baked once and proved before use.

Modules: ``identity`` (what a host carries that its copies may not share, and
the cleaning), ``firstboot`` (what each copy makes for itself at boot),
``scan`` (no private key or secret leaves), ``oci`` and ``export`` (the zstd
tarball, the OCI archive, the build record), ``bake`` (the build on a lab
host), ``verify`` (boot, follow-up deploy, host checks; ``verify_gateway``
for a gateway image, booted next to a database) and ``manifest`` (written
only for a verified image). docs/reference/images.md is the guide.

Images are built and checked on lab hosts, so this package needs what the lab
needs (root, systemd-nspawn) and a clone of pgfortress for the deploys.
"""

from __future__ import annotations

from ._errors import ImageError
from .identity import IdentityPlan, clean_root, identity_plan
from .scan import Finding, scan_root, scan_tarball

__all__ = [
    "Finding",
    "IdentityPlan",
    "ImageError",
    "clean_root",
    "identity_plan",
    "scan_root",
    "scan_tarball",
]
