"""The exposed schema as the gateway knows it: the only identifiers it accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Column", "ForeignKey", "Function", "Parameter", "Relation", "SchemaCache"]


@dataclass(frozen=True)
class Column:
    """``category`` is PostgreSQL's ``pg_type.typcategory`` of the column's type
    (``A`` array, ``R`` range, ``S`` string, ``N`` numeric, ``U`` user-defined
    such as jsonb or tsvector, …); empty when unknown."""

    name: str
    type: str
    nullable: bool = True
    has_default: bool = False
    category: str = ""


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the owning relation reference ``target_columns``."""

    name: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    name: str
    kind: Literal["table", "view"]
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    has_default: bool = False


@dataclass(frozen=True)
class Function:
    name: str
    parameters: tuple[Parameter, ...]
    return_type: str
    returns_set: bool = False
    volatility: Literal["immutable", "stable", "volatile"] = "volatile"

    @property
    def parameters_by_name(self) -> dict[str, Parameter]:
        return {p.name: p for p in self.parameters}


@dataclass(frozen=True)
class SchemaCache:
    """Relations and functions of the one schema the gateway exposes."""

    schema: str
    relations: dict[str, Relation] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)

    def returned_relation(self, function: Function) -> Relation | None:
        """The relation of this schema whose rows ``function`` returns as a set.

        The return type is ``format_type``'s text: ``orders`` when the schema
        is on the search path, ``shop.orders`` otherwise."""
        if not function.returns_set:
            return None
        schema, _, name = function.return_type.rpartition(".")
        if schema and schema.strip('"') != self.schema:
            return None
        return self.relations.get(name.strip('"'))
