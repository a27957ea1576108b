"""The ``pgfortress audit`` subcommand."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import AuditError
from .catalogue import CATALOGUE, Control, Coverage, coverage
from .numbering import numbering_note
from .report import render_html, render_junit, render_table
from .results import CheckResult, Outcome, Status, summarise
from .runner import declared_controls, find_checks, run_checks

__all__ = ["add_audit_command"]


def add_audit_command(commands: Any) -> None:
    """Add ``audit`` to the top-level subcommands."""
    audit = commands.add_parser(
        "audit",
        help="run the host checks against an inventory and report per control",
        description="Run the testinfra host checks against an inventory's hosts and "
        "report each CIS PostgreSQL 15 / dev-sec postgres-baseline control as pass, "
        "fail, not applicable or not covered. Exit status 1 when a control fails.",
    )
    audit.add_argument("inventory", nargs="?", help="pyinfra inventory file")
    audit.add_argument(
        "--host",
        action="append",
        default=[],
        help="audit only this inventory host (repeat for more); default: all",
    )
    audit.add_argument("--checks", help="directory of host checks (default: see docs)")
    audit.add_argument("--junit", default="pgfortress-audit.xml", help="JUnit XML file")
    audit.add_argument("--html", default="pgfortress-audit.html", help="HTML report")
    audit.add_argument(
        "--list",
        action="store_true",
        help="print the catalogue, the checks naming each control and the "
        "coverage, without contacting any host",
    )
    audit.add_argument(
        "--markdown",
        action="store_true",
        help="with --list: print it as the markdown table of docs/reference/audit.md",
    )
    audit.set_defaults(handler=_audit)


def _progress(done: int, total: int, result: CheckResult) -> None:
    mark = {Outcome.PASSED: "pass", Outcome.FAILED: "FAIL", Outcome.SKIPPED: "skip"}
    print(
        f"[{done:>3}/{total}] {mark[result.outcome]:<4} {result.host}  {result.check}",
        file=sys.stderr,
        flush=True,
    )


def _answer(entry: Control, declared: dict[str, list[str]], markdown: bool) -> str:
    if entry.coverage is not Coverage.CHECKED:
        return f"{entry.coverage.value}: {entry.reason}"
    names = [name.split("::")[-1] for name in declared.get(entry.id, [])]
    if not names:
        return "NO CHECK YET"
    return "checked by " + ", ".join(f"`{n}`" if markdown else n for n in names)


def _list(checks: Path, markdown: bool) -> int:
    declared = declared_controls(checks)
    if markdown:
        print("| control | title | how pgfortress answers it |\n|---|---|---|")
    for entry in CATALOGUE:
        answer = _answer(entry, declared, markdown)
        if markdown:
            print(f"| `{entry.id}` | {entry.title} | {answer.replace('|', '/')} |")
        else:
            print(f"{entry.id:<20} {answer}")
    checked, total, percent = coverage(set(declared))
    print(f"\ncoverage: {checked} of {total} controls have a host check ({percent} %)")
    return 0


def _audit(args: argparse.Namespace) -> int:
    checks = find_checks(Path(args.checks) if args.checks else None)
    if args.list:
        return _list(checks, args.markdown)
    if not args.inventory:
        raise AuditError(
            "audit: name the inventory to audit, such as inventories/prod.py"
        )
    print(f"pgfortress audit: host checks from {checks}", file=sys.stderr)
    results = run_checks(Path(args.inventory), checks, args.host, _progress)
    rows = summarise(results)
    print(render_table(rows), end="")
    note = numbering_note(host_majors(results))
    print(note)
    unmapped = Counter(r.outcome.value for r in results if not r.controls)
    if unmapped:
        # Such checks cannot change a control's status; say how they went,
        # and name each that failed: a host that fails one is not sound.
        print(
            "host checks naming no control: "
            + ", ".join(f"{n} {outcome}" for outcome, n in sorted(unmapped.items()))
        )
    broken = failed_without_control(results)
    for result in broken:
        print(f"  failed on {result.host}: {result.check}: {result.message}")
    Path(args.junit).write_text(render_junit(rows, args.inventory, note))
    Path(args.html).write_text(render_html(rows, args.inventory, note=note))
    print(f"wrote {args.junit} and {args.html}")
    failed = broken or any(row.status is Status.FAIL for row in rows)
    return 1 if failed else 0


def failed_without_control(results: Sequence[CheckResult]) -> list[CheckResult]:
    """Host checks that name no control and failed: they fail the audit too."""
    return [r for r in results if not r.controls and r.outcome is Outcome.FAILED]


def host_majors(results: Sequence[CheckResult]) -> dict[str, int]:
    """Each host's PostgreSQL major, as the checks that read it recorded it."""
    return {r.host: r.postgres_major for r in results if r.postgres_major is not None}
