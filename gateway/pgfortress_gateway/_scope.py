"""Row conditions for one relation: filters, ``order``, ``limit`` and ``offset``.

The same parameters apply to the top relation (``?id=eq.1&order=id``) and to an
embedded one, prefixed by its name (``?orders.total=gt.10&orders.limit=2``).
Parameters are grouped here by that prefix, the *path* of the embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from pgfortress_gateway._filters import check_column, parse_filter, parse_logic
from pgfortress_gateway._lex import nonnegative, show, split_top, unquote
from pgfortress_gateway._nodes import Condition, Order
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import Relation

__all__ = ["Path", "Scope", "group_by_path", "parse_order", "parse_scope"]

Path = tuple[str, ...]
_LOGIC = frozenset(("or", "and", "not.or", "not.and"))
_NULLS: dict[str, Literal["first", "last"]] = {
    "nullsfirst": "first",
    "nullslast": "last",
}


@dataclass(frozen=True)
class Scope:
    filters: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None
    offset: int = 0


def group_by_path(
    params: Sequence[tuple[str, str]],
) -> dict[Path, list[tuple[str, str]]]:
    """``orders.total=gt.1`` goes to path ``("orders",)`` as ``total=gt.1``."""
    groups: dict[Path, list[tuple[str, str]]] = {}
    for key, value in params:
        segments = [unquote(part) for part in split_top(key, ".")]
        if any(not part for part in segments):
            raise RequestError(f"empty name in the parameter {show(key)}")
        if len(segments) >= 2 and segments[-2] == "not" and segments[-1] in _LOGIC:
            segments[-2:] = [f"not.{segments[-1]}"]
        *path, name = segments
        groups.setdefault(tuple(path), []).append((name, value))
    return groups


def parse_scope(relation: Relation, params: Sequence[tuple[str, str]]) -> Scope:
    """Parse the parameters of one path; ``select`` must be taken out before."""
    filters: list[Condition] = []
    single: dict[str, str] = {}
    for name, value in params:
        if name in ("order", "limit", "offset"):
            if name in single:
                raise RequestError(f"{name} is given more than once")
            single[name] = value
        elif name in _LOGIC:
            operator = cast(Literal["and", "or"], name.removeprefix("not."))
            negated = name.startswith("not.")
            filters.append(parse_logic(relation, operator, value, negated=negated))
        else:
            filters.append(parse_filter(relation, name, value))
    return Scope(
        filters=tuple(filters),
        order=parse_order(relation, single["order"]) if "order" in single else (),
        limit=nonnegative("limit", single["limit"]) if "limit" in single else None,
        offset=nonnegative("offset", single.get("offset", "0")),
    )


def parse_order(relation: Relation, text: str) -> tuple[Order, ...]:
    """``col[.asc|.desc][.nullsfirst|.nullslast]``, comma-separated."""
    terms: list[Order] = []
    for item in split_top(text):
        parts = split_top(item, ".")
        column = check_column(relation, unquote(parts[0]))
        modifiers = parts[1:]
        descending, nulls = False, None
        if modifiers and modifiers[0] in ("asc", "desc"):
            descending = modifiers.pop(0) == "desc"
        if modifiers and modifiers[0] in _NULLS:
            nulls = _NULLS[modifiers.pop(0)]
        if modifiers:
            raise RequestError(
                f"bad order term {show(item)}: use col.asc|desc[.nullsfirst|.nullslast]"
            )
        terms.append(Order(column, descending, nulls))
    return tuple(terms)
