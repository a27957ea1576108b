"""A pytest plugin that records each host check's outcome with its controls.

The audit runs the host checks with pytest in its own process and reads the
reports pytest hands to :meth:`ControlCollector.pytest_runtest_logreport`,
never pytest's printed output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from ._errors import AuditError
from .catalogue import CATALOGUE
from .numbering import MAJOR_PROPERTY
from .results import CheckResult, Outcome

__all__ = [
    "MARKER",
    "ControlCollector",
    "check_control_ids",
    "controls_of",
    "register_marker",
]

MARKER = "control"
_KNOWN = frozenset(entry.id for entry in CATALOGUE)


def register_marker(config: pytest.Config) -> None:
    """Declare the marker, for runs outside the repository's pyproject.toml."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*ids): hardening controls a host check covers, as "
        "'cis:<number>' and 'devsec:<id>'",
    )


def controls_of(item: pytest.Item) -> tuple[str, ...]:
    """The control ids an item's ``control`` markers name, in order, once each."""
    ids: list[str] = []
    for mark in item.iter_markers(MARKER):
        for value in mark.args:
            if value not in ids:
                ids.append(value)
    return tuple(ids)


def check_control_ids(items: Iterable[pytest.Item]) -> None:
    """Stop the run if a check names a control the catalogue does not have."""
    problems = []
    for item in items:
        for value in controls_of(item):
            if not isinstance(value, str) or value not in _KNOWN:
                problems.append(f"{item.nodeid}: unknown control id {value!r}")
    if problems:
        raise pytest.UsageError(
            "host checks name controls that are not in pgfortress's catalogue "
            "(pgfortress/audit/catalogue.py); fix the marker or add the control:\n  "
            + "\n  ".join(problems)
        )


def _host_of(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    return str(host.backend.get_hostname()) if host is not None else "local"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def _failure_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0][:300]
    return str(report.longrepr or "").strip().splitlines()[-1][:300]


class ControlCollector:
    """Collects one :class:`CheckResult` per check and host as pytest runs."""

    def __init__(self, progress: Callable[[int, int, CheckResult], None] | None = None):
        self.results: list[CheckResult] = []
        self.usage_error = ""
        self._items: dict[str, pytest.Item] = {}
        self._done: set[str] = set()
        self._progress = progress

    def pytest_configure(self, config: pytest.Config) -> None:
        register_marker(config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        try:
            check_control_ids(items)
        except pytest.UsageError as error:
            self.usage_error = str(error)
            raise
        self._items = {item.nodeid: item for item in items}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        item = self._items.get(report.nodeid)
        if item is None or report.nodeid in self._done:
            return
        if report.failed:
            outcome, message = Outcome.FAILED, _failure_text(report)
        elif report.skipped:
            outcome, message = Outcome.SKIPPED, _skip_reason(report)
        elif report.when == "call":
            outcome, message = Outcome.PASSED, ""
        else:
            return
        self._done.add(report.nodeid)
        host = _host_of(item)
        result = CheckResult(
            check=getattr(item, "originalname", item.name) + _param_suffix(item),
            host=host,
            outcome=outcome,
            controls=controls_of(item),
            message=message,
            postgres_major=_recorded_major(report),
        )
        self.results.append(result)
        if self._progress is not None:
            self._progress(len(self.results), len(self._items), result)

    def raise_usage_error(self) -> None:
        if self.usage_error:
            raise AuditError(self.usage_error)


def _recorded_major(report: pytest.TestReport) -> int | None:
    """The ``postgres_major`` a check recorded with ``record_property``, if any."""
    for name, value in report.user_properties:
        if name == MAJOR_PROPERTY and isinstance(value, int):
            return value
    return None


def _param_suffix(item: Any) -> str:
    """A check's own parameters (not the host) as ``[a-b]``."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    host = callspec.params.get("_testinfra_host")
    own = callspec.id
    if host is not None:
        own = own.replace(str(host.backend.get_pytest_id()), "")
    own = re.sub("-{2,}", "-", own).strip("-")
    return f"[{own}]" if own else ""
