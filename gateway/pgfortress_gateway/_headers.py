"""The request headers of the URL grammar: ``Prefer``, ``Range``, ``Accept`` and
the schema profiles (``Accept-Profile``/``Content-Profile``).

The official clients send these on every request: postgrest-py names a schema
in both profile headers, postgrest-js asks for a single object with
``Accept: application/vnd.pgrst.object+json``. They are read the way PostgREST
reads them, and what cannot be honoured is a 406, never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pgfortress_gateway._lex import show
from pgfortress_gateway._nodes import Preferences, Resolution, Returning
from pgfortress_gateway.errors import RequestError

__all__ = [
    "apply_range",
    "check_profile",
    "content_range",
    "parse_prefer",
    "wants_object",
]

_RANGE = re.compile(r"(?:items=)?([0-9]{1,15})-([0-9]{0,15})")
_RETURNING: frozenset[str] = frozenset(("minimal", "headers-only", "representation"))
_RESOLUTION: frozenset[str] = frozenset(("merge-duplicates", "ignore-duplicates"))
_OBJECT = "application/vnd.pgrst.object+json"
_ARRAY: frozenset[str] = frozenset(
    ("application/json", "application/vnd.pgrst.array+json", "application/*", "*/*")
)
_QUALITY = re.compile(r"q=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


def parse_prefer(text: str) -> Preferences:
    """``Prefer: return=representation, count=exact``; unknown tokens are ignored
    (as PostgREST does), but preferences we would silently get wrong are refused."""
    returning: Returning = "minimal"
    count = missing_default = False
    resolution: Resolution | None = None
    for token in text.split(","):
        key, _, value = token.strip().partition("=")
        if key == "return" and value in _RETURNING:
            returning = value  # type: ignore[assignment]
        elif key == "count":
            if value != "exact":
                raise RequestError("only Prefer: count=exact is supported")
            count = True
        elif key == "resolution":
            if value not in _RESOLUTION:
                raise RequestError(
                    "use Prefer: resolution=merge-duplicates or ignore-duplicates"
                )
            resolution = value  # type: ignore[assignment]
        elif key == "missing":
            missing_default = value == "default"
    return Preferences(returning, count, resolution, missing_default)


def check_profile(headers: Mapping[str, str], schema: str, *, writing: bool) -> None:
    """The schema a client names (``Content-Profile`` on writes, ``Accept-Profile``
    on reads) must be the one exposed schema; ``headers`` has lower-case keys."""
    name = headers.get("content-profile" if writing else "accept-profile")
    if name is not None and name.strip() != schema:
        raise RequestError(
            f"schema {show(name.strip())} is not exposed; use {show(schema)}",
            status=406,
        )


def wants_object(headers: Mapping[str, str]) -> bool:
    """Whether ``Accept`` asks for one JSON object rather than an array.

    Media types are tried by quality, then in the order given; their other
    parameters (such as ``nulls=stripped``) are ignored. An ``Accept`` naming
    nothing we can answer with is refused."""
    text = headers.get("accept", "").strip()
    if not text:
        return False
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(text.split(",")):
        kind, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            match = _QUALITY.fullmatch(parameter.replace(" ", ""))
            if match:
                quality = float(match.group(1))
        if quality > 0:
            ranked.append((-quality, index, kind.lower()))
    for _, _, kind in sorted(ranked):
        if kind == _OBJECT:
            return True
        if kind in _ARRAY:
            return False
    raise RequestError(
        f"cannot answer with {show(text)}: accept application/json or {_OBJECT}",
        status=406,
    )


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
