"""Horizontal filters: ``col=[not.]op.value`` and ``or=(…)``/``and=(…)`` trees.

Values are kept as the caller wrote them: an array ``{a,b}``, a range
``[1,5)`` or a tsquery reach PostgreSQL as bound text cast to the column's
type, which parses them. Which operators make sense for a column is decided
here from the type's category in the catalog, so that ``sl`` on an integer
gets a clear refusal; what the category cannot tell (a user-defined type)
is left to PostgreSQL, whose refusal the gateway answers with 400 too.
"""

from __future__ import annotations

import re
from typing import Literal, cast

from pgfortress_gateway._lex import show, split_dot, split_top, unquote
from pgfortress_gateway._nodes import Filter, Logic, Operator
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import Column, Relation

__all__ = ["FULL_TEXT", "OPERATORS", "check_column", "parse_filter", "parse_logic"]

FULL_TEXT: frozenset[str] = frozenset(("fts", "plfts", "phfts", "wfts"))
MAX_SEARCH = 1000  # characters of one full-text search value
OPERATORS: frozenset[str] = frozenset(
    (
        *("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"),
        *("in", "is", "isdistinct", "cs", "cd", "ov", "sl", "sr", "nxl", "nxr", "adj"),
        *FULL_TEXT,
    )
)
_IS_VALUES = frozenset(("null", "true", "false", "unknown"))
_NESTED = re.compile(r"(not\.)?(and|or)\((.*)\)", re.DOTALL)
_OPERATOR = re.compile(r"([a-z]+)(?:\(([^()]*)\))?")
_CONFIG = re.compile(r"[A-Za-z0-9_]{1,63}")  # PostgREST's letters, digits and _
_MAX_DEPTH = 8

# The type categories (pg_type.typcategory) each operator can apply to, and how
# to say so. "U" (user-defined: jsonb, tsvector, PostGIS, hstore…) stays open:
# PostgreSQL knows whether such a type has the operator.
_ARRAYS_RANGES = frozenset("ARGU")
_RANGES = frozenset("RGU")
_APPLIES: dict[str, tuple[frozenset[str], str]] = {
    "cs": (_ARRAYS_RANGES, "array, range and jsonb"),
    "cd": (_ARRAYS_RANGES, "array, range and jsonb"),
    "ov": (_ARRAYS_RANGES, "array and range"),
    "sl": (_RANGES, "range"),
    "sr": (_RANGES, "range"),
    "nxl": (_RANGES, "range"),
    "nxr": (_RANGES, "range"),
    "adj": (frozenset("RU"), "range"),
    **{name: (frozenset("SU"), "text, json and tsvector") for name in FULL_TEXT},
}


def check_column(relation: Relation, column: str) -> str:
    if column not in relation.columns:
        raise RequestError(
            f"column {show(column)} does not exist in {show(relation.name)}"
        )
    return column


def parse_filter(
    relation: Relation, column: str, text: str, *, in_logic: bool = False
) -> Filter:
    """Parse ``[not.]op.value`` for ``column``; ``in_logic`` unquotes the value."""
    check_column(relation, column)
    negated = text.startswith("not.")
    if negated:
        text = text[4:]
    token, dot, value = text.partition(".")
    operator, config = _operator(column, token)
    if not dot:
        raise RequestError(f"the filter on {show(column)} needs a value: op.value")
    _check_applies(relation.columns[column], operator)
    if operator == "in":
        items = _in_list(column, value)
        if relation.columns[column].type.endswith("[]"):
            raise RequestError(f"'in' is not supported on array column {show(column)}")
        return Filter(column, operator, items, negated)
    if in_logic and not (value.startswith("{") and value.endswith("}")):
        # A {…} array literal is taken whole, quotes and all, as PostgREST does.
        value = unquote(value)
    if operator == "is":
        if value.lower() not in _IS_VALUES:
            raise RequestError(
                f"'is' takes null, true, false or unknown, got {show(value)}"
            )
        value = value.lower()
    elif operator in ("like", "ilike"):
        value = value.replace("*", "%")
    elif operator in FULL_TEXT and len(value) > MAX_SEARCH:
        # A long run of operators overflows PostgreSQL's query parser stack,
        # an internal error rather than a clear refusal.
        raise RequestError(
            f"the search on {show(column)} is longer than {MAX_SEARCH} characters"
        )
    return Filter(column, operator, value, negated, config)


def _operator(column: str, token: str) -> tuple[Operator, str | None]:
    """``eq`` → ("eq", None); ``fts(english)`` → ("fts", "english")."""
    match = _OPERATOR.fullmatch(token)
    if match is None or match.group(1) not in OPERATORS:
        raise RequestError(
            f"unknown operator {show(token)} in the filter on {show(column)}; "
            f"use one of {', '.join(sorted(OPERATORS))}"
        )
    name, config = match.group(1), match.group(2)
    if config is not None:
        if name not in FULL_TEXT:
            raise RequestError(
                f"only full-text operators take a (configuration): {show(token)}"
            )
        if not _CONFIG.fullmatch(config):
            raise RequestError(
                f"bad text search configuration {show(config)}: "
                "use letters, digits and _"
            )
    return cast(Operator, name), config


def _check_applies(column: Column, operator: str) -> None:
    rule = _APPLIES.get(operator)
    if rule is None or not column.category or column.category in rule[0]:
        return
    raise RequestError(
        f"{operator!r} applies to {rule[1]} columns; "
        f"{show(column.name)} is {show(column.type)}"
    )


def parse_logic(
    relation: Relation,
    operator: Literal["and", "or"],
    text: str,
    *,
    negated: bool = False,
    depth: int = 0,
) -> Logic:
    """Parse the ``(cond,cond,…)`` value of an ``and``/``or`` parameter."""
    if depth > _MAX_DEPTH:
        raise RequestError("and/or conditions are nested too deeply")
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise RequestError(f"{operator} needs a list in parentheses, got {show(text)}")
    inner = text[1:-1]
    if not inner.strip():
        raise RequestError(f"{operator}=() needs at least one condition")
    conditions: list[Filter | Logic] = []
    for item in split_top(inner, array_literals=True):
        nested = _NESTED.fullmatch(item)
        if nested:
            kind = cast(Literal["and", "or"], nested.group(2))
            conditions.append(
                parse_logic(
                    relation,
                    kind,
                    f"({nested.group(3)})",
                    negated=bool(nested.group(1)),
                    depth=depth + 1,
                )
            )
            continue
        column, rest = split_dot(item)
        if rest is None:
            raise RequestError(
                f"expected column.op.value inside {operator}, got {show(item)}"
            )
        conditions.append(parse_filter(relation, column, rest, in_logic=True))
    return Logic(operator, tuple(conditions), negated)


def _in_list(column: str, value: str) -> tuple[str, ...]:
    if len(value) < 2 or value[0] != "(" or value[-1] != ")":
        raise RequestError(
            f"'in' on {show(column)} needs a list in parentheses: in.(a,b)"
        )
    inner = value[1:-1]
    if not inner:
        return ()
    items = split_top(inner)
    for item in items:
        if not item.startswith('"') and ("(" in item or ")" in item):
            raise RequestError(
                f"quote values with parentheses in 'in' lists: {show(item)}"
            )
    return tuple(unquote(item) for item in items)
