"""What a grant line is about: the ``on:`` text and the privileges it allows.

The grammar of ``on:`` is small and fixed::

    database
    schema NAME
    table SCHEMA.NAME            (tables, views, materialized and foreign tables)
    sequence SCHEMA.NAME
    function SCHEMA.NAME(TYPE, ...)
    all tables|sequences|functions in schema NAME

Names follow SQL: unquoted names are folded to lower case, double-quoted
names are kept as written (``table "Sales"."Q1 totals"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALL",
    "GrantTarget",
    "ObjectKind",
    "normalize_type",
    "parse_target",
    "privileges_for",
]

ObjectKind = Literal["database", "schema", "table", "sequence", "function"]
ALL = "ALL"

_PRIVILEGES: dict[ObjectKind, tuple[str, ...]] = {
    "database": ("CONNECT", "CREATE", "TEMPORARY"),
    "schema": ("USAGE", "CREATE"),
    "table": (
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "REFERENCES",
        "TRIGGER",
    ),
    "sequence": ("USAGE", "SELECT", "UPDATE"),
    "function": ("EXECUTE",),
}
# MAINTAIN (VACUUM, ANALYZE, REINDEX...) became a table privilege in 17.
_MAINTAIN_SINCE = 17

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_FORMS = re.compile(
    r"(?P<database>database)"
    rf"|schema\s+(?P<schema_name>{_IDENT})"
    rf"|(?P<kind>table|sequence)\s+(?P<schema>{_IDENT})\s*\.\s*(?P<name>{_IDENT})"
    rf"|function\s+(?P<fschema>{_IDENT})\s*\.\s*(?P<fname>{_IDENT})"
    r"\s*\((?P<args>[^()]*)\)"
    r"|all\s+(?P<plural>tables|sequences|functions)\s+in\s+schema\s+"
    rf"(?P<all_schema>{_IDENT})",
    re.IGNORECASE,
)
_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_ .]*(?:\[\])*")
_TYPE_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "bool": "boolean",
    "varchar": "character varying",
    "char": "character",
    "float8": "double precision",
    "float4": "real",
    "float": "double precision",
    "decimal": "numeric",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timetz": "time with time zone",
    "time": "time without time zone",
}
_GRAMMAR_HINT = (
    "write one of: database | schema NAME | table SCHEMA.NAME | "
    "sequence SCHEMA.NAME | function SCHEMA.NAME(TYPE, ...) | "
    "all tables|sequences|functions in schema NAME"
)


@dataclass(frozen=True)
class GrantTarget:
    """A parsed ``on:``; ``name`` is None for ``database`` and ``all ...``."""

    kind: ObjectKind
    schema: str | None = None
    name: str | None = None
    args: tuple[str, ...] = ()
    all_in_schema: bool = False

    def __str__(self) -> str:
        if self.kind == "database":
            return "database"
        if self.kind == "schema":
            return f"schema {_show(self.name or '')}"
        schema = _show(self.schema or "")
        if self.all_in_schema:
            return f"all {self.kind}s in schema {schema}"
        text = f"{self.kind} {schema}.{_show(self.name or '')}"
        return text + (f"({', '.join(self.args)})" if self.kind == "function" else "")

    @property
    def schema_name(self) -> str | None:
        """The schema this target lives in or is, None for the database."""
        return self.name if self.kind == "schema" else self.schema


def parse_target(text: str) -> GrantTarget:
    """Read an ``on:`` value, or raise ValueError naming the accepted forms."""
    match = _FORMS.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"cannot read {text!r}; {_GRAMMAR_HINT}")
    if match["database"]:
        return GrantTarget("database")
    if match["schema_name"]:
        return GrantTarget("schema", name=_ident(match["schema_name"]))
    if match["kind"]:
        kind: ObjectKind = "table" if match["kind"].lower() == "table" else "sequence"
        return GrantTarget(kind, _ident(match["schema"]), _ident(match["name"]))
    if match["fname"]:
        args = _arg_types(match["args"])
        name = _ident(match["fname"])
        return GrantTarget("function", _ident(match["fschema"]), name, args)
    plural = match["plural"].lower()
    kinds: dict[str, ObjectKind] = {
        "tables": "table",
        "sequences": "sequence",
        "functions": "function",
    }
    schema = _ident(match["all_schema"])
    return GrantTarget(kinds[plural], schema, all_in_schema=True)


def privileges_for(kind: ObjectKind, major: int | None = None) -> tuple[str, ...]:
    """The privileges an object of ``kind`` has; ``major`` None means any version."""
    names = _PRIVILEGES[kind]
    if kind == "table" and (major is None or major >= _MAINTAIN_SINCE):
        names = (*names, "MAINTAIN")
    return names


def normalize_type(text: str) -> str:
    """One spelling per type, as the server prints it: ``int4`` is ``integer``."""
    base = " ".join(text.lower().split())
    arrays = ""
    while base.endswith("[]"):
        base, arrays = base[:-2].rstrip(), arrays + "[]"
    return _TYPE_ALIASES.get(base, base) + arrays


def _arg_types(text: str) -> tuple[str, ...]:
    if not text.strip():
        return ()
    types = []
    for part in text.split(","):
        if not _TYPE.fullmatch(part.strip()):
            raise ValueError(
                f"{part.strip()!r} is not an argument type; list only the types, "
                "as in function app.touch(integer, text)"
            )
        types.append(normalize_type(part))
    return tuple(types)


def _ident(text: str) -> str:
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def _show(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'
