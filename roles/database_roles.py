"""Provisioning role: least-privilege database roles from a YAML spec.

Inventory data read: ``postgres_database_roles`` (path of the spec, relative
to where pyinfra runs), ``pgfortress_secrets_dir`` (where generated passwords
are kept, 0700), and ``postgres_version`` if set. The spec format is in
docs/reference/database-roles.md.

What changes on the host: only the difference between the spec and what the
catalogs hold, in both directions (GRANT and REVOKE, attribute on and off,
membership added and removed), as one psql script run by the postgres OS user
over the unix socket. Passwords travel only as SCRAM verifiers, from a
root-only file. When nothing differs, the operation says so in one sentence.
"""

from __future__ import annotations

from typing import Any

from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host

from pgfortress.catalog import CatalogState, fresh_cluster
from pgfortress.errors import PgFortressError, SpecError
from pgfortress.plan import PostgresLayout
from pgfortress.plan.database_roles import RolesPlan, plan_database_roles
from pgfortress.plan.psql_script import psql_script, start_database
from pgfortress.secrets import Secret, SecretStore, resolve_secret_ref
from pgfortress.spec import from_host_data
from pgfortress.spec.database_roles import DatabaseRolesSpec, load_database_roles

from .facts import PostgresCatalogs, prepared_fact
from .operations import psql_secret_script
from .postgres_server import host_layout

__all__ = ["database_roles"]


@deploy("Database roles from the spec")
def database_roles() -> None:
    try:
        plan, layout = _plan()
    except PgFortressError as error:
        raise DeployError(str(error)) from error

    for line in plan.reports:
        host.log(f"database roles: {line}")
    if not plan.statements:
        # Said at every verbosity: "no change" deserves its reason.
        host.log(plan.summary())
    for statement in plan.statements:
        host.log(f"  {statement.display}")
    start = start_database(plan.statements)
    psql_secret_script(
        name="Apply the database roles spec",
        script=Secret(psql_script(plan.statements, connected_to=start)),
        needed=bool(plan.statements),
        reason=plan.summary(),
        psql=layout.psql_binary,
        database=start,
    )


def _plan() -> tuple[RolesPlan, PostgresLayout]:
    data: dict[str, Any] = host.data.dict()  # type: ignore[no-untyped-call]
    host_spec = from_host_data(host.name, data)
    if host_spec.database_roles is None or host_spec.secrets_dir is None:
        raise SpecError(
            f"host {host.name}: postgres_database_roles: not set; name the spec "
            "file (for example specs/example.yml) and pgfortress_secrets_dir"
        )
    spec = load_database_roles(host_spec.database_roles)
    layout = host_layout(host_spec)
    cluster, databases = _catalog(spec, layout)
    store = SecretStore(host_spec.secrets_dir)
    passwords = _passwords(spec, store)
    return plan_database_roles(spec, cluster, databases, passwords), layout


def _catalog(
    spec: DatabaseRolesSpec, layout: PostgresLayout
) -> tuple[CatalogState, dict[str, CatalogState | None]]:
    """The cluster's catalog (from ``postgres``) and each spec database's, in
    one round trip; None for a database that does not exist yet."""
    version_num = layout.version * 10000
    names = ["postgres", *(name for name in spec.databases if name != "postgres")]
    found = prepared_fact(
        PostgresCatalogs,
        databases=names,
        version_num=version_num,
        psql=layout.psql_binary,
    )
    # Databases the read did not reach (the server is not up yet) are fresh.
    found = [*found, *[None] * (len(names) - len(found))]
    states = dict(zip(names, found, strict=True))
    databases = {name: states[name] for name in spec.databases}
    return states["postgres"] or fresh_cluster(version_num), databases


def _passwords(spec: DatabaseRolesSpec, store: SecretStore) -> dict[str, Secret]:
    return {
        name: resolve_secret_ref(role.password, store, f"{host.name}/{name}")
        for name, role in spec.roles.items()
        if role.login
    }
