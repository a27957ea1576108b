"""Small lexing helpers shared by the URL grammar modules.

PostgREST's grammar separates items with ``,`` and nests with ``( )``; double
quotes protect those characters inside a name or a value, and a backslash
protects a double quote or a backslash inside quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgfortress_gateway.errors import RequestError

__all__ = [
    "INT",
    "nonnegative",
    "show",
    "split_dot",
    "split_top",
    "unquote",
    "unquoted",
]

INT = re.compile(r"[0-9]{1,15}")
_SHOWN = 60


def show(text: str) -> str:
    """The caller's input, shortened and escaped, fit to quote in an error."""
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "..."
    return repr(text)


def unquoted(text: str) -> Iterator[tuple[int, str]]:
    """Each character outside double quotes, with its index.

    Raises RequestError at the end if a quote is left open.
    """
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            escaped = char == "\\"
            quoted = char != '"'
        elif char == '"':
            quoted = True
        else:
            yield index, char
    if quoted:
        raise RequestError(f"unclosed quote in {show(text)}")


def split_top(text: str, sep: str = ",", *, array_literals: bool = False) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses; refuse unbalanced input.

    With ``array_literals``, a ``{…}`` that starts a value (right after a
    ``.``) is one piece, separators included: PostgREST reads an array
    literal there without quotes (``a.eq.1,b.cs.{x,y}``).
    """
    parts: list[str] = []
    depth, start, braced, previous = 0, 0, False, ""
    for index, char in unquoted(text):
        if braced:
            braced = char != "}"
        elif array_literals and char == "{" and previous == ".":
            braced = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise RequestError(f"unbalanced ')' in {show(text)}")
        elif char == sep and depth == 0:
            parts.append(text[start:index])
            start = index + 1
        previous = char
    if depth or braced:
        what = "parenthesis or brace" if array_literals else "parenthesis"
        raise RequestError(f"unclosed {what} in {show(text)}")
    parts.append(text[start:])
    return parts


def split_dot(text: str) -> tuple[str, str | None]:
    """Split ``name.rest`` once, where ``name`` may be double-quoted."""
    if text.startswith('"'):
        end = _closing_quote(text)
        head, rest = text[: end + 1], text[end + 1 :]
        if not rest:
            return unquote(head), None
        if not rest.startswith("."):
            raise RequestError(f"expected '.' after the quoted name in {show(text)}")
        return unquote(head), rest[1:]
    head, dot, rest = text.partition(".")
    return head, (rest if dot else None)


def unquote(text: str) -> str:
    """Remove one level of double quotes (and backslash escapes inside them)."""
    if len(text) >= 2 and text[0] == '"' and _closing_quote(text) == len(text) - 1:
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if '"' in text:
        raise RequestError(f"misplaced double quote in {show(text)}")
    return text


def nonnegative(name: str, text: str) -> int:
    if not INT.fullmatch(text):
        raise RequestError(f"{name} must be a non-negative integer, got {show(text)}")
    return int(text)


def _closing_quote(text: str) -> int:
    escaped = False
    for index in range(1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return index
    raise RequestError(f"unclosed double quote in {show(text)}")
