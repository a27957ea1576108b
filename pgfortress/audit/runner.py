"""Find the host checks, run them with pytest against an inventory's hosts.

Where the checks come from, first match wins:

1. ``--checks DIR`` on the command line;
2. ``tests/host`` under the current directory, when run from a clone of
   pgfortress (the checks there are the ones the clone's deploys match);
3. the copy shipped inside the installed package (``pgfortress/audit/host_checks``,
   put there when the wheel is built from ``tests/host``).
"""

from __future__ import annotations

import ast
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ._errors import AuditError
from .inventory import inventory_hosts, ssh_config_text
from .plugin import ControlCollector
from .results import CheckResult

__all__ = ["declared_controls", "find_checks", "run_checks"]

PACKAGED = Path(__file__).resolve().parent / "host_checks"


def find_checks(explicit: Path | None = None, cwd: Path | None = None) -> Path:
    """The directory of host checks the audit runs (see the module docstring)."""
    if explicit is not None:
        if not (explicit / "conftest.py").is_file():
            raise AuditError(
                f"--checks {explicit}: no conftest.py there; point it at a directory "
                "of host checks such as tests/host"
            )
        return explicit
    for candidate in ((cwd or Path.cwd()) / "tests" / "host", PACKAGED):
        if (candidate / "conftest.py").is_file():
            return candidate
    raise AuditError(
        "no host checks found: run from a clone of pgfortress (tests/host), install "
        "pgfortress from a wheel (it ships them), or pass --checks DIR"
    )


def _is_mark_attribute(node: ast.AST) -> bool:
    """``pytest.mark.control`` (or ``mark.control``)."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "control"
        and isinstance(node.value, ast.Attribute | ast.Name)
        and (
            node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id
        )
        == "mark"
    )


def _aliases(tree: ast.Module) -> set[str]:
    """Module-level names bound to the marker (``control = pytest.mark.control``)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and _is_mark_attribute(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _ids_in(node: ast.AST, aliases: set[str]) -> list[str]:
    ids = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        if _is_mark_attribute(func) or (
            isinstance(func, ast.Name) and func.id in aliases
        ):
            ids += [
                arg.value
                for arg in call.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            ]
    return ids


def declared_controls(checks: Path) -> dict[str, list[str]]:
    """Control id → the checks whose markers name it, read from the source.

    Reading the source needs no host, so the coverage figure and the
    catalogue listing work anywhere.
    """
    found: dict[str, list[str]] = {}
    for path in sorted(checks.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = _aliases(tree)
        module_ids = [
            value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
            )
            for value in _ids_in(node, aliases)
        ]
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ids = module_ids + [
                    i for d in node.decorator_list for i in _ids_in(d, aliases)
                ]
                for control_id in dict.fromkeys(ids):
                    found.setdefault(control_id, []).append(f"{path.stem}::{node.name}")
    return found


Progress = Callable[[int, int, CheckResult], None]


def run_checks(
    inventory: Path,
    checks: Path,
    hosts: Sequence[str] = (),
    progress: Progress | None = None,
) -> list[CheckResult]:
    """Run every host check against the inventory's hosts; one result per run."""
    known = inventory_hosts(inventory)
    chosen = list(hosts) or sorted(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise AuditError(
            f"--host {', '.join(unknown)}: not in {inventory}; its hosts are "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    if not chosen:
        raise AuditError(f"inventory {inventory}: it names no host to audit")
    collector = ControlCollector(progress)
    with tempfile.TemporaryDirectory(prefix="pgfortress-audit-") as tmp:
        config = Path(tmp) / "ssh_config"
        config.write_text(ssh_config_text({name: known[name] for name in chosen}))
        config.chmod(0o600)
        args = [
            str(checks),
            "-c",
            os.devnull,
            f"--rootdir={checks.parent}",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:terminal",
            "--strict-markers",
            f"--hosts={','.join(f'ssh://{name}' for name in chosen)}",
            f"--ssh-config={config}",
            f"--pgf-inventory={inventory}",
        ]
        code = pytest.main(args, plugins=[collector])
    collector.raise_usage_error()
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise AuditError(
            f"the host checks in {checks} could not run (pytest exit status "
            f"{int(code)}); run them directly to see why: pytest {checks} "
            f"--hosts=ssh://HOST --pgf-inventory={inventory}"
        )
    return collector.results
