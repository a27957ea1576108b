"""``pgfortress audit``: host checks rolled up into a per-control compliance report.

Modules: ``catalogue`` (the controls), ``plugin`` (pytest plugin reading check
outcomes and markers), ``results`` (outcomes → control status), ``report``
(table, JUnit XML, HTML), ``runner`` (find and run the checks), ``inventory``
(hosts and SSH settings from a pyinfra inventory).
"""

from __future__ import annotations

from ._errors import AuditError
from .catalogue import CATALOGUE, Control, Coverage, coverage
from .report import render_html, render_junit, render_table
from .results import CheckResult, ControlResult, Outcome, Status, summarise
from .runner import declared_controls, find_checks, run_checks

__all__ = [
    "CATALOGUE",
    "AuditError",
    "CheckResult",
    "Control",
    "ControlResult",
    "Coverage",
    "Outcome",
    "Status",
    "coverage",
    "declared_controls",
    "find_checks",
    "render_html",
    "render_junit",
    "render_table",
    "run_checks",
    "summarise",
]
