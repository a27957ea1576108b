"""What a PostgreSQL server holds, read from its catalogs in one round trip.

:func:`catalog_query` is the single statement the provisioning role runs per
database; it returns one JSON document, which :func:`parse_catalog` turns into
a :class:`CatalogState`. Privileges arrive already exploded by the server
(``aclexplode`` over ``acldefault`` when an ACL is NULL), so implicit default
privileges such as PUBLIC's CONNECT on a database are visible like any grant.
Secrets never come back: for a password only its kind, the SCRAM salt and
iteration count, and an md5 digest of the stored verifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BOOTSTRAP_SUPERUSER",
    "PUBLIC",
    "CatalogObject",
    "CatalogState",
    "DefaultPrivilege",
    "Membership",
    "PasswordState",
    "Privilege",
    "RoleState",
    "catalog_query",
    "fresh_cluster",
    "parse_catalog",
]

PUBLIC = "PUBLIC"

ObjectType = Literal["database", "schema", "table", "sequence", "function", "language"]
DefaultObjectType = Literal["tables", "sequences", "functions", "types", "schemas"]


@dataclass(frozen=True)
class PasswordState:
    """The kind of stored password; never the verifier itself."""

    kind: Literal["scram", "md5", "other"]
    salt_and_iterations: str | None
    digest: str


@dataclass(frozen=True)
class RoleState:
    """One database role and its attributes (cluster-wide)."""

    name: str
    login: bool = False
    superuser: bool = False
    createdb: bool = False
    createrole: bool = False
    inherit: bool = True
    replication: bool = False
    bypassrls: bool = False
    connection_limit: int = -1
    valid_until: str | None = None
    password: PasswordState | None = None
    settings: dict[str, str] = field(default_factory=dict)
    comment: str | None = None


@dataclass(frozen=True)
class Membership:
    """``member`` is a member of ``role``; options are None before PostgreSQL 16."""

    role: str
    member: str
    admin: bool = False
    inherit: bool | None = None
    set: bool | None = None


@dataclass(frozen=True)
class Privilege:
    """One privilege on one object, held by a role or by PUBLIC.

    ``schema`` is None for databases, schemas and languages (whose own name is
    ``name``); a function's ``name`` carries its argument types, e.g.
    ``lookup(integer, text)``.
    """

    object_type: ObjectType
    schema: str | None
    name: str
    grantee: str
    privilege: str
    grantable: bool = False


@dataclass(frozen=True)
class DefaultPrivilege:
    """A privilege future objects get when ``owner`` creates them."""

    owner: str
    schema: str | None
    object_type: DefaultObjectType
    grantee: str
    privilege: str
    grantable: bool = False


@dataclass(frozen=True)
class CatalogObject:
    """A schema-level object: a table, view, sequence or function."""

    object_type: Literal["table", "sequence", "function"]
    schema: str
    name: str
    owner: str


@dataclass(frozen=True)
class CatalogState:
    """Everything the database-role planner compares with the spec."""

    version_num: int
    database: str
    roles: dict[str, RoleState]
    memberships: frozenset[Membership]
    databases: dict[str, str]
    schemas: dict[str, str]
    objects: tuple[CatalogObject, ...]
    privileges: frozenset[Privilege]
    default_privileges: frozenset[DefaultPrivilege]
    languages: dict[str, bool]

    @property
    def major(self) -> int:
        return self.version_num // 10000


BOOTSTRAP_SUPERUSER = RoleState(
    "postgres",
    login=True,
    superuser=True,
    createdb=True,
    createrole=True,
    replication=True,
    bypassrls=True,
)


def fresh_cluster(version_num: int) -> CatalogState:
    """What a just-installed server holds: for planning before it exists."""
    return CatalogState(
        version_num=version_num,
        database="postgres",
        roles={"postgres": BOOTSTRAP_SUPERUSER},
        memberships=frozenset(),
        databases={"postgres": "postgres"},
        schemas={},
        objects=(),
        privileges=frozenset(),
        default_privileges=frozenset(),
        languages={},
    )


_DEFAULT_TYPES = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}
_DEFAULT_TYPES["n"] = "schemas"


def catalog_query(version_num: int) -> str:
    """The one statement that reads a database's state, for that server version.

    Membership options INHERIT and SET exist from PostgreSQL 16 on.
    """
    member_options = (
        "'inherit', m.inherit_option, 'set', m.set_option"
        if version_num >= 160000
        else "'inherit', NULL, 'set', NULL"
    )
    return _QUERY.replace("{member_options}", member_options)


_QUERY = """
WITH acl AS (
  SELECT 'database' AS object_type, NULL::name AS schema, d.datname::text AS name,
         aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a
  FROM pg_database d WHERE NOT d.datistemplate
  UNION ALL
  SELECT 'schema', NULL, n.nspname,
         aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner)))
  FROM pg_namespace n
  WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname,
         c.relname,
         aclexplode(coalesce(c.relacl, acldefault(
           CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)))
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
    AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT 'function', n.nspname,
         p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
         aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT 'language', NULL, l.lanname,
         aclexplode(coalesce(l.lanacl, acldefault('l', l.lanowner)))
  FROM pg_language l
)
SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'database', current_database(),
  'roles', (
    SELECT coalesce(json_agg(json_build_object(
      'name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper,
      'createdb', r.rolcreatedb, 'createrole', r.rolcreaterole,
      'inherit', r.rolinherit, 'replication', r.rolreplication,
      'bypassrls', r.rolbypassrls, 'connection_limit', r.rolconnlimit,
      'valid_until', to_char(r.rolvaliduntil AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
      'password_kind', CASE
        WHEN r.rolpassword IS NULL THEN NULL
        WHEN r.rolpassword LIKE 'SCRAM-SHA-256$%' THEN 'scram'
        WHEN r.rolpassword LIKE 'md5%' THEN 'md5'
        ELSE 'other' END,
      'password_salt', CASE WHEN r.rolpassword LIKE 'SCRAM-SHA-256$%'
        THEN split_part(r.rolpassword, '$', 2) END,
      'password_digest', md5(r.rolpassword),
      'settings', (
        SELECT coalesce(json_agg(c ORDER BY c), '[]')
        FROM pg_db_role_setting s, unnest(s.setconfig) AS c
        WHERE s.setrole = r.oid AND s.setdatabase = 0),
      'comment', shobj_description(r.oid, 'pg_authid')
    ) ORDER BY r.rolname), '[]')
    FROM pg_authid r WHERE r.rolname !~ '^pg_'),
  'memberships', (
    SELECT coalesce(json_agg(json_build_object(
      'role', g.rolname, 'member', u.rolname, 'admin', m.admin_option,
      {member_options})), '[]')
    FROM pg_auth_members m
    JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
    WHERE g.rolname !~ '^pg_'),
  'databases', (
    SELECT coalesce(json_object_agg(d.datname, pg_get_userbyid(d.datdba)), '{}')
    FROM pg_database d WHERE NOT d.datistemplate),
  'schemas', (
    SELECT coalesce(json_object_agg(n.nspname, pg_get_userbyid(n.nspowner)), '{}')
    FROM pg_namespace n
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'),
  'objects', (
    SELECT coalesce(json_agg(json_build_object(
      'object_type', o.object_type, 'schema', o.schema, 'name', o.name,
      'owner', o.owner)), '[]')
    FROM (
      SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END
               AS object_type,
             n.nspname AS schema, c.relname::text AS name,
             pg_get_userbyid(c.relowner) AS owner
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')
        AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      UNION ALL
      SELECT 'function', n.nspname,
             p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
             pg_get_userbyid(p.proowner)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
    ) o),
  'privileges', (
    SELECT coalesce(json_agg(json_build_object(
      'object_type', acl.object_type, 'schema', acl.schema, 'name', acl.name,
      'grantee', CASE WHEN (acl.a).grantee = 0 THEN 'PUBLIC'
                      ELSE pg_get_userbyid((acl.a).grantee) END,
      'privilege', (acl.a).privilege_type,
      'grantable', (acl.a).is_grantable)), '[]')
    FROM acl),
  'default_privileges', (
    SELECT coalesce(json_agg(json_build_object(
      'owner', pg_get_userbyid(d.defaclrole), 'schema', n.nspname,
      'object_type', d.defaclobjtype,
      'grantee', CASE WHEN (d.a).grantee = 0 THEN 'PUBLIC'
                      ELSE pg_get_userbyid((d.a).grantee) END,
      'privilege', (d.a).privilege_type,
      'grantable', (d.a).is_grantable)), '[]')
    FROM (SELECT defaclrole, defaclnamespace, defaclobjtype,
                 aclexplode(defaclacl) AS a FROM pg_default_acl) d
    LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace),
  'languages', (
    SELECT coalesce(json_object_agg(l.lanname, l.lanpltrusted), '{}')
    FROM pg_language l)
)
"""


def parse_catalog(text: str) -> CatalogState:
    """Turn the query's JSON document into a typed state."""
    doc: dict[str, Any] = json.loads(text)
    roles = {}
    for item in doc["roles"]:
        roles[item["name"]] = _role(item)
    return CatalogState(
        version_num=int(doc["version_num"]),
        database=doc["database"],
        roles=roles,
        memberships=frozenset(Membership(**m) for m in doc["memberships"]),
        databases=dict(doc["databases"]),
        schemas=dict(doc["schemas"]),
        objects=tuple(CatalogObject(**o) for o in doc["objects"]),
        privileges=frozenset(Privilege(**p) for p in doc["privileges"]),
        default_privileges=frozenset(
            DefaultPrivilege(**(d | {"object_type": _DEFAULT_TYPES[d["object_type"]]}))
            for d in doc["default_privileges"]
        ),
        languages=dict(doc["languages"]),
    )


def _role(item: dict[str, Any]) -> RoleState:
    kind = item.pop("password_kind")
    salt = item.pop("password_salt")
    digest = item.pop("password_digest")
    settings = dict(s.split("=", 1) for s in item.pop("settings"))
    password = None if kind is None else PasswordState(kind, salt, digest)
    return RoleState(**item, password=password, settings=settings)
