"""Horizontal filters: ``col=[not.]op.value`` and ``or=(…)``/``and=(…)`` trees."""

from __future__ import annotations

import re
from typing import Literal, cast

from pgfortress_gateway._lex import show, split_dot, split_top, unquote
from pgfortress_gateway._nodes import Filter, Logic, Operator
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import Relation

__all__ = ["OPERATORS", "check_column", "parse_filter", "parse_logic"]

OPERATORS: frozenset[str] = frozenset(
    ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is")
)
_IS_VALUES = frozenset(("null", "true", "false", "unknown"))
_NESTED = re.compile(r"(not\.)?(and|or)\((.*)\)", re.DOTALL)
_MAX_DEPTH = 8


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
    name, dot, value = text.partition(".")
    if name not in OPERATORS:
        raise RequestError(
            f"unknown operator {show(name)} in the filter on {show(column)}; "
            f"use one of {', '.join(sorted(OPERATORS))}"
        )
    if not dot:
        raise RequestError(f"the filter on {show(column)} needs a value: op.value")
    operator = cast(Operator, name)
    if operator == "in":
        items = _in_list(column, value)
        if relation.columns[column].type.endswith("[]"):
            raise RequestError(f"'in' is not supported on array column {show(column)}")
        return Filter(column, operator, items, negated)
    if in_logic:
        value = unquote(value)
    if operator == "is":
        if value.lower() not in _IS_VALUES:
            raise RequestError(
                f"'is' takes null, true, false or unknown, got {show(value)}"
            )
        value = value.lower()
    elif operator in ("like", "ilike"):
        value = value.replace("*", "%")
    return Filter(column, operator, value, negated)


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
    for item in split_top(inner):
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
