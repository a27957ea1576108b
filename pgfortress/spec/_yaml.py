"""YAML reading that remembers where each value was written.

Spec errors must point at a line, and PyYAML's plain loaders forget lines as
soon as they build Python objects. Here the document is composed into nodes
first and turned into dicts and lists by hand, recording the line of every
mapping key and sequence item under its key path. Two things differ from
``yaml.safe_load`` on purpose:

- a key written twice in one mapping is an error (PyYAML keeps the last one,
  so a duplicated role would silently replace the first);
- mapping keys are always text as written, so ``on:`` stays ``"on"`` instead
  of becoming the boolean True that YAML 1.1 makes of it.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import SpecError

__all__ = ["KeyPath", "Lines", "dotted", "load_with_lines"]

KeyPath = tuple[str | int, ...]
Lines = dict[KeyPath, int]


def load_with_lines(text: str, source: str) -> tuple[Any, Lines]:
    """Parse one YAML document; return its data and the line of each key path.

    Lines are 1-based. The empty path maps to the document's first line.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = error.problem or "cannot be read"
        raise SpecError(
            f"{source}:{line}: not valid YAML: {problem}; check the indentation "
            "and quoting on this line or the one before it"
        ) from None
    finally:
        loader.dispose()
    if node is None:
        return None, {(): 1}
    lines: Lines = {(): node.start_mark.line + 1}
    return _build(node, (), lines, loader, source), lines


def _build(
    node: yaml.Node, path: KeyPath, lines: Lines, loader: yaml.SafeLoader, source: str
) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _mapping(node, path, lines, loader, source)
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, child in enumerate(node.value):
            lines[(*path, index)] = child.start_mark.line + 1
            items.append(_build(child, (*path, index), lines, loader, source))
        return items
    return loader.construct_object(node, deep=True)


def _mapping(
    node: yaml.MappingNode,
    path: KeyPath,
    lines: Lines,
    loader: yaml.SafeLoader,
    source: str,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise SpecError(
                f"{source}:{line}: {dotted(path)}: a key must be plain text, not "
                "a list or mapping; write it as name: value"
            )
        key = str(key_node.value)
        if key in result:
            first = lines[(*path, key)]
            raise SpecError(
                f"{source}:{line}: {dotted((*path, key))}: written twice (first on "
                f"line {first}); YAML would keep only the last one, so merge the "
                "two or rename one of them"
            )
        lines[(*path, key)] = line
        result[key] = _build(value_node, (*path, key), lines, loader, source)
    return result


def dotted(path: KeyPath) -> str:
    """Render a key path the way a reader finds it: ``roles.x.member_of[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "(top level)"
