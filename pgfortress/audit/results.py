"""Check outcomes, and the status of each control they add up to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from .catalogue import CATALOGUE, Control, Coverage

__all__ = ["CheckResult", "ControlResult", "Outcome", "Status", "summarise"]


class Outcome(Enum):
    """What happened to one host check on one host."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Status(Enum):
    """A control's status in the report."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "not applicable"
    NOT_COVERED = "not covered"


@dataclass(frozen=True)
class CheckResult:
    """One host check run on one host."""

    check: str
    host: str
    outcome: Outcome
    controls: tuple[str, ...]
    message: str = ""
    # The host's PostgreSQL major, when this check read and recorded it.
    postgres_major: int | None = None


@dataclass(frozen=True)
class ControlResult:
    """A control with its status, the reason, and the check runs behind it."""

    control: Control
    status: Status
    reason: str
    checks: tuple[CheckResult, ...] = field(default=())

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.outcome is Outcome.FAILED)


def _status_from_checks(runs: Sequence[CheckResult]) -> tuple[Status, str]:
    failed = [run for run in runs if run.outcome is Outcome.FAILED]
    if failed:
        names = ", ".join(f"{run.check} on {run.host}" for run in failed)
        return Status.FAIL, f"failed: {names}"
    passed = [run for run in runs if run.outcome is Outcome.PASSED]
    if passed:
        hosts = sorted({run.host for run in passed})
        return Status.PASS, f"{len(passed)} check run(s) passed on {', '.join(hosts)}"
    if runs:
        reasons = sorted({run.message for run in runs if run.message})
        return Status.NOT_APPLICABLE, "; ".join(reasons) or "every check was skipped"
    return (
        Status.NOT_COVERED,
        "no host check in this run names this control",
    )


def summarise(
    results: Iterable[CheckResult], catalogue: Sequence[Control] = CATALOGUE
) -> list[ControlResult]:
    """Every control of the catalogue with its status, in catalogue order.

    A control fails when any check naming it failed on any host, passes when
    at least one passed and none failed, and is not applicable when every
    check naming it was skipped (the skip reason says why). Controls the
    catalogue marks not applicable or not covered keep the catalogue's reason.
    """
    runs = list(results)
    out = []
    for entry in catalogue:
        mine = tuple(run for run in runs if entry.id in run.controls)
        if entry.coverage is Coverage.CHECKED:
            status, reason = _status_from_checks(mine)
        elif entry.coverage is Coverage.NOT_APPLICABLE:
            status, reason = Status.NOT_APPLICABLE, entry.reason
        else:
            status, reason = Status.NOT_COVERED, entry.reason
        out.append(ControlResult(entry, status, reason, mine))
    return out
