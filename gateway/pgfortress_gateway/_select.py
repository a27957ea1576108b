"""The ``select=`` parameter: columns, aliases and embedded relations.

``select=id,name:full_name,orders!customer_fk(id,total)`` selects two columns
(one renamed) and, for each row, the orders pointing at it. The foreign key
joining an embedded relation is found in the catalog, in either direction;
when several match, the caller must name one after ``!``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pgfortress_gateway._lex import show, split_top, unquote, unquoted
from pgfortress_gateway._nodes import Embed, Field, SelectItem
from pgfortress_gateway._scope import Path, parse_scope
from pgfortress_gateway.errors import RequestError
from pgfortress_gateway.schema import ForeignKey, Relation, SchemaCache

__all__ = ["parse_select", "resolve_embed"]

_MAX_DEPTH = 4
MAX_EMBEDS = 20  # embedded resources in one request, at every depth together
MAX_FIELDS = 200  # columns named in one request, at every depth together
_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"|[^"]+|"')
_MAX_NAME = 63  # PostgreSQL truncates longer identifiers


def parse_select(
    text: str,
    relation: Relation,
    cache: SchemaCache,
    scoped: Mapping[Path, Sequence[tuple[str, str]]],
    path: Path = (),
) -> tuple[SelectItem, ...]:
    """Parse a select list of ``relation``; ``scoped`` holds embed parameters."""
    if len(path) > _MAX_DEPTH:
        raise RequestError("embedded resources are nested too deeply")
    items: list[SelectItem] = []
    for raw in split_top(_strip_spaces(text)):
        if not raw:
            raise RequestError(f"empty item in select={show(text)}")
        items.append(_parse_item(raw, relation, cache, scoped, path))
    keys = [item.key for item in items if item.key != "*"]
    if len(keys) != len(set(keys)):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise RequestError(
            f"select names {', '.join(show(k) for k in twice)} more than once; "
            "give each an alias of its own"
        )
    if not path:
        _check_size(items)
    return tuple(items)


def _check_size(items: Sequence[SelectItem]) -> None:
    """Bound the work one URL can ask for: a handful of characters per embed
    can otherwise make the database build a very wide, very deep answer."""
    fields, embeds = 0, 0
    pending = list(items)
    while pending:
        item = pending.pop()
        if isinstance(item, Embed):
            embeds += 1
            pending.extend(item.select)
        else:
            fields += 1
    if embeds > MAX_EMBEDS:
        raise RequestError(
            f"select embeds {embeds} resources; at most {MAX_EMBEDS} per request"
        )
    if fields > MAX_FIELDS:
        raise RequestError(
            f"select names {fields} columns; at most {MAX_FIELDS} per request"
        )


def resolve_embed(
    cache: SchemaCache, parent: Relation, target: str, hint: str | None
) -> tuple[ForeignKey, bool]:
    """The foreign key joining ``parent`` to ``target``, and whether it is to-many."""
    other = cache.relations.get(target)
    if other is None:
        raise RequestError(f"no relation {show(target)} to embed")
    candidates: list[tuple[ForeignKey, bool]] = [
        (fk, False) for fk in parent.foreign_keys if fk.target == target
    ]
    candidates += [(fk, True) for fk in other.foreign_keys if fk.target == parent.name]
    if hint is not None:
        candidates = [
            (fk, many)
            for fk, many in candidates
            if hint == fk.name or fk.columns == (hint,)
        ]
        if len(candidates) > 1 and len({fk for fk, _ in candidates}) == 1:
            # A self-reference matches both ways; a hint means the row's own key
            # (many-to-one). Embedding the rows that point back is not supported.
            candidates = [pair for pair in candidates if not pair[1]][:1]
    if not candidates:
        raise RequestError(
            f"no foreign key relates {show(parent.name)} and {show(target)}"
            + (f" matching {show(hint)}" if hint else "")
        )
    if len(candidates) > 1:
        names = ", ".join(sorted({fk.name for fk, _ in candidates}))
        raise RequestError(
            f"more than one foreign key relates {show(parent.name)} and "
            f"{show(target)}; disambiguate with {target}!<name>, one of: {names}"
        )
    return candidates[0]


def _parse_item(
    raw: str,
    relation: Relation,
    cache: SchemaCache,
    scoped: Mapping[Path, Sequence[tuple[str, str]]],
    path: Path,
) -> SelectItem:
    if raw == "*":
        return Field("*")
    alias, body = _split_alias(raw)
    opening = _embed_start(body)
    if opening < 0:
        column = unquote(body)
        if "->" in column and column not in relation.columns:
            raise RequestError(f"JSON paths in select are not supported: {show(raw)}")
        if column not in relation.columns:
            raise RequestError(
                f"column {show(column)} does not exist in {show(relation.name)}"
            )
        return Field(column, alias)
    if not body.endswith(")"):
        raise RequestError(f"unexpected text after ')' in {show(raw)}")
    name, *modifiers = (unquote(part) for part in split_top(body[:opening], "!"))
    inner = False
    hints: list[str] = []
    for modifier in modifiers:
        if modifier in ("inner", "left"):
            inner = modifier == "inner"
        else:
            hints.append(modifier)
    if len(hints) > 1:
        raise RequestError(f"give at most one hint after '!' in {show(raw)}")
    foreign_key, to_many = resolve_embed(
        cache, relation, name, hints[0] if hints else None
    )
    target = cache.relations[name]
    key = alias or name
    scope = parse_scope(target, scoped.get((*path, key), ()))
    return Embed(
        relation=name,
        foreign_key=foreign_key,
        to_many=to_many,
        select=parse_select(body[opening + 1 : -1], target, cache, scoped, (*path, key))
        if body[opening + 1 : -1]
        else (),
        alias=alias,
        filters=scope.filters,
        order=scope.order,
        limit=scope.limit,
        offset=scope.offset,
        inner=inner,
    )


def _split_alias(raw: str) -> tuple[str | None, str]:
    if "::" in _outside_quotes(raw):
        raise RequestError(f"casts in select are not supported: {show(raw)}")
    parts = split_top(raw, ":")
    if len(parts) == 1:
        return None, raw
    if len(parts) > 2 or not parts[0] or not parts[1]:
        raise RequestError(f"bad alias in select item {show(raw)}")
    alias = unquote(parts[0])
    if len(alias.encode()) > _MAX_NAME:
        raise RequestError(f"alias {show(alias)} is longer than {_MAX_NAME} bytes")
    if "%" in alias:
        # The driver reads % as the start of a placeholder even inside a
        # quoted name, so the statement could not be sent as written.
        raise RequestError(f"alias {show(alias)}: leave out the % sign")
    return alias, ":".join(parts[1:])


def _embed_start(body: str) -> int:
    """Index of the first ``(`` outside quotes, or -1."""
    return next((index for index, char in unquoted(body) if char == "("), -1)


def _outside_quotes(text: str) -> str:
    return "".join(t for t in _QUOTED.findall(text) if not t.startswith('"'))


def _strip_spaces(text: str) -> str:
    """Drop whitespace outside double quotes, as clients pretty-print select."""
    return "".join(
        t if t.startswith('"') else "".join(t.split()) for t in _QUOTED.findall(text)
    )
