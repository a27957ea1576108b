"""Turn pydantic's validation errors into ``file:line: key: problem; fix`` lines.

Pydantic reports where a problem is as a location tuple that may contain
entries of its own (validator names, ``[key]``); the key paths recorded while
reading the YAML tell which entries are real, and which line each one is on.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ._yaml import KeyPath, Lines, dotted

__all__ = ["describe", "unknown_key_message"]

# A fix for each kind of type mismatch pydantic can report.
_FIXES = {
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "string_type": "write text (quote it if YAML reads it as something else)",
    "dict_type": "write a mapping of key: value lines",
    "model_type": "write a mapping of key: value lines",
    "model_attributes_type": "write a mapping of key: value lines",
    "list_type": "write a list, such as [a, b]",
    "tuple_type": "write a list, such as [a, b]",
    "too_short": "list at least one",
    "greater_than_equal": "use -1 for no limit, or a positive number",
}


_NOT_A_REFERENCE = (
    "not a password reference; write env:VARIABLE or file:/path/to/file, or leave "
    "password out to have one generated into the secret store"
)


def unknown_key_message(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown key; {hint}the keys here are {', '.join(allowed)}"


def describe(error: ValidationError, lines: Lines, source: str) -> str:
    """One line per problem, ordered as they appear in the file."""
    found: list[tuple[KeyPath, str]] = []
    for item in error.errors(include_url=False):
        ctx = item.get("ctx") or {}
        if item["type"] == "spec_conflict":
            found += list(ctx["problems"])
            continue
        path = _real_path(tuple(item["loc"]), lines)
        if item["type"] == "unknown_key":
            path = (*path, ctx["key"])
        elif item["type"] == "missing":
            path = (*path, item["loc"][-1])
        if path[-1:] == ("password",) and item["type"] != "value_error":
            # Whatever was written there may be a password: never repeat it.
            found.append((path, _NOT_A_REFERENCE))
            continue
        found.append((path, _message(item)))
    messages = []
    for path, text in found:
        line = _line(path, lines)
        messages.append((line, f"{source}:{line}: {dotted(path)}: {text}"))
    return "\n".join(dict.fromkeys(text for _, text in sorted(messages)))


def _real_path(loc: KeyPath, lines: Lines) -> KeyPath:
    path: KeyPath = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return path


def _line(path: KeyPath, lines: Lines) -> int:
    while path not in lines:
        path = path[:-1]
    return lines[path]


def _message(item: Any) -> str:
    kind = item["type"]
    text = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    if kind in ("value_error", "unknown_key"):
        return text
    if kind == "missing":
        return "is required; add it (see docs/reference/database-roles.md)"
    found = item.get("input")
    shown = "nothing" if found is None else repr(found)
    fix = _FIXES.get(kind)
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        return f"{shown} is not allowed; write {expected}"
    if fix is None:
        return f"{shown}: {text}"
    return f"{shown} does not fit ({text.lower()}); {fix}"
