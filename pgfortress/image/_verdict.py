"""What the verifications of every role share: how a run fails an image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import ImageError
from ._run import AuditOutcome, DeployOutcome

__all__ = ["DPKG_QUERY", "failure", "require_no_change", "summary"]

DPKG_QUERY = "dpkg-query -W -f '${Package}\\t${Version}\\n'"


def summary(outcome: AuditOutcome) -> dict[str, Any]:
    return {"counts": outcome.counts(), "failing": outcome.failing()}


def failure(stage: str, outcome: AuditOutcome, allowed: Mapping[str, str]) -> str:
    """Why an audit stage fails the image, or an empty string."""
    failing = [c for c in outcome.failing() if c not in allowed]
    unnamed = outcome.unnamed_failures()
    if not failing and not unnamed:
        return ""
    parts = []
    if failing:
        parts.append(f"failed controls: {', '.join(failing)}")
    if unnamed:
        parts.append("failed host checks naming no control: " + "; ".join(unnamed))
    return f"{stage}: " + "; ".join(parts)


def require_no_change(second: DeployOutcome) -> None:
    """The second follow-up deploy must find everything in place."""
    if second.changed:
        raise ImageError(
            f"verification failed: the second follow-up deploy changed "
            f"{second.changed} operation(s); it must change nothing:\n"
            f"{second.output[-3000:]}"
        )
