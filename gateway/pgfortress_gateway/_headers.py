"""The request headers of the URL grammar: ``Prefer`` and ``Range``."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pgfortress_gateway._lex import show
from pgfortress_gateway._nodes import Preferences, Returning
from pgfortress_gateway.errors import RequestError

__all__ = ["apply_range", "content_range", "parse_prefer"]

_RANGE = re.compile(r"(?:items=)?([0-9]{1,15})-([0-9]{0,15})")
_RETURNING: frozenset[str] = frozenset(("minimal", "headers-only", "representation"))


def parse_prefer(text: str) -> Preferences:
    """``Prefer: return=representation, count=exact``; unknown tokens are ignored
    (as PostgREST does), but preferences we would silently get wrong are refused."""
    returning: Returning = "minimal"
    count = False
    for token in text.split(","):
        key, _, value = token.strip().partition("=")
        if key == "return" and value in _RETURNING:
            returning = value  # type: ignore[assignment]
        elif key == "count":
            if value != "exact":
                raise RequestError("only Prefer: count=exact is supported")
            count = True
        elif key == "resolution":
            raise RequestError("upsert (Prefer: resolution=…) is not supported")
        elif key == "missing" and value == "default":
            raise RequestError("Prefer: missing=default is not supported")
    return Preferences(returning, count)


def content_range(offset: int, returned: int, total: int | None) -> str:
    """The ``Content-Range`` answer header: ``0-9/120``, ``*/0`` or ``0-9/*``."""
    shown = "*" if total is None else str(total)
    if returned == 0:
        return f"*/{shown}"
    return f"{offset}-{offset + returned - 1}/{shown}"


def apply_range(
    headers: Mapping[str, str], offset: int, limit: int | None
) -> tuple[int, int | None]:
    """Intersect ``limit``/``offset`` with a ``Range: first-last`` header."""
    text = headers.get("range")
    if text is None:
        return offset, limit
    unit = headers.get("range-unit", "items").strip().lower()
    match = _RANGE.fullmatch(text.strip())
    if unit != "items" or match is None:
        raise RequestError(f"bad Range header {show(text)}: use Range: 0-9", status=416)
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else None
    if last is not None and last < first:
        raise RequestError(f"bad Range header {show(text)}: last < first", status=416)
    start = max(offset, first)
    ends = [
        e
        for e in (last, None if limit is None else offset + limit - 1)
        if e is not None
    ]
    end = min(ends) if ends else None
    return start, (None if end is None else max(0, end - start + 1))
