"""The database roles spec: roles, memberships, databases, schemas and grants.

One YAML file per environment declares every role pgfortress manages and
what each may do; docs/reference/database-roles.md describes the format.
:func:`load_database_roles` reads and checks it completely before any host is
touched, and each problem names the file, the line, the key and the fix.

The spec can never make a role more powerful than its job: there is no way to
write SUPERUSER, REPLICATION or BYPASSRLS, and managed roles always get the
opposite.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import SpecError
from ._database_checks import database_problems
from ._role_checks import role_problems
from ._spec_errors import describe, unknown_key_message
from ._values import (
    as_list,
    as_mapping,
    as_memberships,
    as_privileges,
    as_target,
    as_valid_until,
)
from ._yaml import load_with_lines
from .grant_targets import ALL, GrantTarget, privileges_for

__all__ = [
    "ApiSpec",
    "DatabaseRolesSpec",
    "DatabaseSpec",
    "GrantSpec",
    "MemberOf",
    "RoleSpec",
    "SchemaSpec",
    "SettingValue",
    "load_database_roles",
    "parse_database_roles",
]

SettingValue = StrictBool | StrictInt | StrictFloat | StrictStr
_PASSWORD_REF = re.compile(r"env:[A-Za-z_][A-Za-z0-9_]*|file:[/~].*")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Keys refused with a reason instead of the generic "unknown key".
    refused_keys: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # Checked here rather than by extra="forbid" so the message can say
        # which keys exist and point at the line of the unknown one.
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    message = cls.refused_keys.get(key) or unknown_key_message(
                        key, allowed
                    )
                    raise PydanticCustomError(
                        "unknown_key", "{message}", {"key": key, "message": message}
                    )
        return data


Names = Annotated[tuple[str, ...], BeforeValidator(as_list)]
Target = Annotated[GrantTarget, PlainValidator(as_target), PlainSerializer(str)]


class MemberOf(_Model):
    """Membership in ``role``; ``inherit`` None means the server's default."""

    role: str
    admin: StrictBool = False
    inherit: StrictBool | None = None
    set: StrictBool = True


class RoleSpec(_Model):
    """One role and its attributes; everything not written is the safe default."""

    refused_keys: ClassVar[dict[str, str]] = {
        key: (
            f"pgfortress never gives {key.upper()}: every managed role is "
            "NOSUPERUSER NOREPLICATION NOBYPASSRLS; remove this key (the "
            "bootstrap superuser postgres is the only superuser)"
        )
        for key in ("superuser", "replication", "bypassrls")
    }

    login: StrictBool = False
    inherit: StrictBool = True
    createdb: StrictBool = False
    createrole: StrictBool = False
    connection_limit: StrictInt = Field(default=-1, ge=-1)
    valid_until: Annotated[str | None, BeforeValidator(as_valid_until)] = None
    password: str | None = None
    settings: dict[str, SettingValue] = Field(default_factory=dict)
    member_of: Annotated[tuple[MemberOf, ...], BeforeValidator(as_memberships)] = ()
    comment: str | None = None

    @field_validator("password")
    @classmethod
    def _password_ref(cls, value: str | None) -> str | None:
        if value is not None and not _PASSWORD_REF.fullmatch(value):
            raise ValueError(
                "not a password reference; write env:VARIABLE or file:/path/to/file, "
                "or leave password out to have one generated into the secret store "
                "(never write the password itself here)"
            )
        return value


class ApiSpec(_Model):
    """The gateway pattern: a login that switches to NOLOGIN roles per request."""

    authenticator: str
    anonymous: str
    roles: Names = ()


class GrantSpec(_Model):
    """Privileges on one object (or all of a kind in a schema) for some roles."""

    to: Annotated[Names, Field(min_length=1)]
    on: Target
    privileges: Annotated[
        tuple[str, ...], BeforeValidator(as_privileges), Field(min_length=1)
    ]
    with_grant_option: StrictBool = False

    @model_validator(mode="after")
    def _privileges_fit(self) -> GrantSpec:
        valid = privileges_for(self.on.kind)
        wrong = [name for name in self.privileges if name not in (*valid, ALL)]
        if wrong:
            raise ValueError(
                f"{', '.join(wrong)} is not a privilege on {_kind_phrase(self.on)}; "
                f"use {', '.join(valid)} or ALL"
                + (" (MAINTAIN needs PostgreSQL 17)" if self.on.kind == "table" else "")
            )
        if len(set(self.privileges)) != len(self.privileges):
            raise ValueError("a privilege is listed twice; list each once")
        return self

    def expanded(self, major: int) -> tuple[str, ...]:
        """The privileges with ALL spelled out for that server version."""
        if ALL in self.privileges:
            return privileges_for(self.on.kind, major)
        return self.privileges


class SchemaSpec(_Model):
    """A schema; its owner defaults to the database owner."""

    owner: str | None = None


class DatabaseSpec(_Model):
    """One database, its owner, the schemas pgfortress manages and the grants."""

    owner: str
    schemas: Annotated[dict[str, SchemaSpec], BeforeValidator(as_mapping)] = Field(
        default_factory=dict
    )
    grants: Annotated[tuple[GrantSpec, ...], BeforeValidator(as_list)] = ()

    def schema_owner(self, schema: str) -> str:
        declared = self.schemas.get(schema)
        return (declared.owner if declared else None) or self.owner


class DatabaseRolesSpec(_Model):
    """The whole spec file, checked for consistency as a whole."""

    unmanaged: Literal["report", "remove"] = "report"
    roles: Annotated[dict[str, RoleSpec], BeforeValidator(as_mapping)] = Field(
        default_factory=dict
    )
    api: ApiSpec | None = None
    databases: Annotated[dict[str, DatabaseSpec], BeforeValidator(as_mapping)] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseRolesSpec:
        problems = role_problems(self) + database_problems(self)
        if problems:
            summary = "; ".join(f"{path}: {text}" for path, text in problems)
            raise PydanticCustomError(
                "spec_conflict", "{summary}", {"summary": summary, "problems": problems}
            )
        return self


def parse_database_roles(text: str, source_name: str) -> DatabaseRolesSpec:
    """Validate spec text; ``source_name`` is how errors name the file."""
    data, lines = load_with_lines(text, source_name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            f"{source_name}:1: the spec must be a mapping with the keys "
            "unmanaged, roles, api and databases; see docs/reference/database-roles.md"
        )
    try:
        return DatabaseRolesSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(describe(error, lines, source_name)) from None


def load_database_roles(path: Path) -> DatabaseRolesSpec:
    """Read and validate a spec file, or raise SpecError saying what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise SpecError(
            f"{path}: cannot read the database roles spec ({reason}); check "
            "postgres_database_roles in the inventory"
        ) from None
    return _parsed(text, str(path))


@functools.lru_cache(maxsize=16)
def _parsed(text: str, source: str) -> DatabaseRolesSpec:
    """:func:`parse_database_roles`, once per text: every host of a run reads
    the same file, and the spec (frozen models) is shared, never changed."""
    return parse_database_roles(text, source)


def _kind_phrase(target: GrantTarget) -> str:
    article = "an" if target.kind[0] in "aeiou" else "a"
    return f"{article} {target.kind}"
