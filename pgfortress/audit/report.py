"""The audit's three outputs: a text table, JUnit XML and one HTML file.

All three are pure functions of the summarised results, so they are tested
without a host.
"""

from __future__ import annotations

import html
import textwrap
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from .results import ControlResult, Status

__all__ = ["counts", "render_html", "render_junit", "render_table"]

_WIDTH = 100


def counts(rows: Sequence[ControlResult]) -> dict[Status, int]:
    """How many controls have each status (every status present, maybe 0)."""
    found = Counter(row.status for row in rows)
    return {status: found.get(status, 0) for status in Status}


def _summary_line(rows: Sequence[ControlResult]) -> str:
    number = counts(rows)
    return (
        f"{len(rows)} controls: {number[Status.PASS]} pass, {number[Status.FAIL]} "
        f"fail, {number[Status.NOT_APPLICABLE]} not applicable, "
        f"{number[Status.NOT_COVERED]} not covered"
    )


def render_table(rows: Sequence[ControlResult]) -> str:
    """A fixed-width table, one control a line; reasons indented below."""
    id_width = max((len(row.control.id) for row in rows), default=8)
    status_width = max(len(status.value) for status in Status)
    title_width = _WIDTH - id_width - status_width - 4
    lines = [
        f"{'control':<{id_width}}  {'status':<{status_width}}  title",
        f"{'-' * id_width}  {'-' * status_width}  {'-' * title_width}",
    ]
    for row in rows:
        title = textwrap.shorten(row.control.title, title_width, placeholder="…")
        lines.append(
            f"{row.control.id:<{id_width}}  {row.status.value:<{status_width}}  {title}"
        )
        if row.status is not Status.PASS:
            indent = " " * (id_width + 2)
            lines += textwrap.wrap(
                row.reason,
                _WIDTH,
                initial_indent=indent,
                subsequent_indent=indent,
            )
    lines.append("")
    lines.append(_summary_line(rows))
    return "\n".join(lines) + "\n"


def render_junit(rows: Sequence[ControlResult], inventory: str, note: str = "") -> str:
    """JUnit XML: one test case per control, grouped in a suite per framework.

    ``note`` (whose numbering the ``cis:`` ids follow) becomes the ``cis``
    suite's ``numbering`` property.
    """
    root = ET.Element("testsuites", name=f"pgfortress audit of {inventory}")
    for framework in sorted({row.control.framework for row in rows}):
        mine = [row for row in rows if row.control.framework == framework]
        number = counts(mine)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=framework,
            tests=str(len(mine)),
            failures=str(number[Status.FAIL]),
            errors="0",
            skipped=str(len(mine) - number[Status.PASS] - number[Status.FAIL]),
        )
        if note and framework == "cis":
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", name="numbering", value=note)
        for row in mine:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"pgfortress.audit.{framework}",
                name=f"{row.control.id} {row.control.title}",
            )
            if row.status is Status.FAIL:
                failure = ET.SubElement(case, "failure", message=row.reason)
                failure.text = "\n".join(
                    f"{run.check} on {run.host}: {run.message}"
                    for run in row.failed_checks
                )
            elif row.status is not Status.PASS:
                ET.SubElement(
                    case, "skipped", message=f"{row.status.value}: {row.reason}"
                )
            out = [
                f"{run.check} on {run.host}: {run.outcome.value}" for run in row.checks
            ]
            if row.control.deviation:
                out.append(f"deviation from the baseline: {row.control.deviation}")
            if out:
                ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4em; text-align: left;
         vertical-align: top; }
.pass { color: #176b2c; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.na, .nc { color: #666; }
.small { font-size: .85em; color: #555; }
"""
_CLASS = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.NOT_APPLICABLE: "na",
    Status.NOT_COVERED: "nc",
}


def _cell(row: ControlResult) -> str:
    parts = [html.escape(row.reason)]
    if row.checks:
        runs = "<br>".join(
            html.escape(f"{run.check} on {run.host}: {run.outcome.value}")
            + (f" ({html.escape(run.message)})" if run.message else "")
            for run in row.checks
        )
        parts.append(f'<div class="small">{runs}</div>')
    if row.control.deviation:
        parts.append(
            '<div class="small">Deviation from the baseline: '
            f"{html.escape(row.control.deviation)}</div>"
        )
    return "".join(parts)


def render_html(
    rows: Sequence[ControlResult],
    inventory: str,
    when: datetime | None = None,
    note: str = "",
) -> str:
    """One self-contained HTML page: inline style, no script, no outside link.

    ``note`` (whose numbering the ``cis:`` ids follow) is printed under the
    summary.
    """
    stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(
        f'<tr id="{html.escape(row.control.id)}"><td>{html.escape(row.control.id)}</td>'
        f'<td class="{_CLASS[row.status]}">{row.status.value}</td>'
        f"<td>{html.escape(row.control.title)}</td><td>{_cell(row)}</td></tr>"
        for row in rows
    )
    title = f"pgfortress audit of {inventory}"
    numbering = f"<p>{html.escape(note)}.</p>\n" if note else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n"
        f"<p>{stamp}. {html.escape(_summary_line(rows))}.</p>\n{numbering}"
        "<table><thead><tr><th>control</th><th>status</th><th>title</th>"
        "<th>why</th></tr></thead><tbody>\n"
        f"{body}\n</tbody></table></body></html>\n"
    )
