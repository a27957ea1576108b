"""The gateway's side of PostgreSQL: a bounded pool and one transaction per request.

Each request sends two statements in one pipeline, on a pooled connection that
logged in as the authenticator: ``SELECT set_config('role', …, true),
set_config('request.jwt.claims', …, true), set_config('statement_timeout', …,
true)`` and the request's own statement. Both run in the one implicit
transaction that ends at the pipeline's Sync, so the role and the claims last
only for that request and the next one on the same connection starts as the
bare authenticator again. They go through libpq's pipeline directly, as
prepared statements, without psycopg's cursors (:mod:`._pipeline`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ._pipeline import run_pair
from .errors import ForbiddenError, GatewayError, RequestError, UnavailableError

__all__ = ["Database", "Query", "missing_memberships"]


@dataclass(frozen=True)
class Query:
    """A statement whose every value is a bound parameter."""

    sql: sql.Composable
    params: tuple[object, ...] = ()


# PostgreSQL 16 made "may SET ROLE" an option of each membership; before it,
# membership alone allowed it.
MEMBERSHIP_QUERY = """
SELECT wanted.name
FROM unnest(%s::text[]) AS wanted(name)
LEFT JOIN pg_roles r ON r.rolname = wanted.name
WHERE r.oid IS NULL OR NOT CASE
  WHEN current_setting('server_version_num')::int >= 160000
  THEN pg_has_role(current_user, r.oid, 'SET')
  ELSE pg_has_role(current_user, r.oid, 'MEMBER') END
ORDER BY 1
"""


_BAD_VALUES = (psycopg.errors.DataError, psycopg.errors.IntegrityError)
_TOO_BIG = (
    psycopg.errors.ProgramLimitExceeded,
    psycopg.errors.StatementTooComplex,
)
_NOT_APPLICABLE = (
    psycopg.errors.DuplicateColumn,
    psycopg.errors.GeneratedAlways,
    psycopg.errors.FeatureNotSupported,
    psycopg.errors.UndefinedObject,
    psycopg.errors.CardinalityViolation,
    psycopg.errors.DatatypeMismatch,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.AmbiguousFunction,
    psycopg.errors.SyntaxError,
    psycopg.errors.TooManyColumns,
    psycopg.errors.InvalidColumnReference,
)


# set_config('role', …, true) is SET LOCAL ROLE with the name as a bound
# value: PostgreSQL still checks that the authenticator may switch to it.
REQUEST_SETUP = (
    "SELECT set_config('role', %s, true), "
    "set_config('request.jwt.claims', %s, true), "
    "set_config('statement_timeout', %s, true)"
)
# Reads run in a read-only transaction: a STABLE function may still call a
# VOLATILE one that writes, and GET must not change anything (PostgREST does
# the same). Writes leave the mode alone rather than forcing read-write,
# which a standby or a read-only authenticator would refuse.
READ_SETUP = REQUEST_SETUP + ", set_config('transaction_read_only', 'on', true)"


class Database:
    """A pool of authenticator connections and the per-request transaction."""

    def __init__(self, conninfo: str, *, min_size: int, max_size: int, timeout: float):
        self._pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            open=False,
            # No check on every checkout (a round trip per request); a broken
            # connection fails its request with 503 and the pool replaces it.
            max_idle=300,
            reconnect_timeout=30,
            # Statements run in autocommit: run_as gets its transaction from
            # the pipeline's Sync, without the BEGIN and COMMIT messages.
            kwargs={"autocommit": True},
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def fetch_json(self, query: str, params: Sequence[object]) -> Any:
        """Run a catalog query as the authenticator itself; return its JSON."""
        async with self._connection() as conn:
            cursor = await conn.execute(query, params)
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def healthy(self) -> bool:
        """True when a pooled connection answers a trivial query."""
        try:
            async with self._connection() as conn:
                await conn.execute("SELECT 1")
        except (GatewayError, psycopg.Error):
            return False
        return True

    async def missing_roles(self, roles: Sequence[str]) -> list[str]:
        """Roles the authenticator cannot switch to (absent or not granted)."""
        async with self._connection() as conn:
            cursor = await conn.execute(MEMBERSHIP_QUERY, (sorted(set(roles)),))
            rows = await cursor.fetchall()
        return [str(row[0]) for row in rows]

    async def run_as(
        self,
        role: str,
        claims_json: str,
        query: Query,
        statement_timeout_ms: int | None = None,
        *,
        read_only: bool = False,
    ) -> tuple[Any, ...] | None:
        """Run ``query`` in one transaction as ``role``; return its single row."""
        timeout = "0" if statement_timeout_ms is None else str(statement_timeout_ms)
        setup = READ_SETUP if read_only else REQUEST_SETUP
        async with self._connection() as conn:
            try:
                # One round trip and one transaction, on libpq's pipeline
                # without psycopg's cursors (see _pipeline).
                setup_pair = (setup, (role, claims_json, timeout))
                return await run_pair(conn, setup_pair, (query.sql, query.params))
            except psycopg.errors.InsufficientPrivilege as error:
                raise ForbiddenError("permission denied") from error
            except psycopg.errors.ReadOnlySqlTransaction as error:
                raise RequestError(
                    "this call writes to the database; call it with POST", status=405
                ) from error
            except _TOO_BIG as error:
                raise RequestError(
                    "the request is too large or too complex for the database"
                ) from error
            except psycopg.errors.QueryCanceled as error:
                raise GatewayError("statement timed out", status=504) from error
            except _BAD_VALUES as bad:
                raise RequestError(_client_message(bad), status=_status(bad)) from bad
            except psycopg.OperationalError as error:
                # The connection died under the request (the pool replaces it),
                # or the server gave up on it (a deadlock): worth a retry.
                raise UnavailableError(
                    "the database could not complete the request; try again"
                ) from error
            except _NOT_APPLICABLE as unfit:
                # Valid names, but an operator, order or call the types do not
                # support (is.true on an integer, eq on json, an overloaded
                # function): the request's fault, said without the server's text.
                raise RequestError(
                    "the request cannot be applied to these columns or arguments"
                ) from unfit

    def _connection(self) -> Any:
        return _Connection(self._pool)


class _Connection:
    """pool.connection() with unreachable-database errors turned into 503."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._context: Any = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        self._context = self._pool.connection()
        try:
            conn: psycopg.AsyncConnection[Any] = await self._context.__aenter__()
        except (PoolTimeout, psycopg.OperationalError) as error:
            raise UnavailableError("the database is busy or unreachable") from error
        return conn

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._context.__aexit__(*exc)
        except psycopg.OperationalError as error:
            raise UnavailableError("the database connection was lost") from error


def missing_memberships(missing: Sequence[str], authenticator: str) -> str:
    """The refusal to start, naming the grants that would fix it."""
    grants = "; ".join(f"GRANT {name} TO {authenticator}" for name in missing)
    return (
        f"the authenticator {authenticator} cannot switch to: {', '.join(missing)}. "
        f"Grant the memberships (for example: {grants}) or remove those roles "
        "from the gateway's configuration"
    )


def _client_message(error: psycopg.Error) -> str:
    # The class of the problem, never the server's text: that may quote values.
    if isinstance(error, psycopg.errors.UniqueViolation):
        return "a row with the same key already exists"
    if isinstance(error, psycopg.errors.ForeignKeyViolation):
        return "a referenced row does not exist, or the row is still referenced"
    if isinstance(error, psycopg.errors.NotNullViolation):
        return "a required column is missing"
    if isinstance(error, psycopg.errors.CheckViolation):
        return "a value breaks a check constraint"
    return "a value is not valid for its column"


def _status(error: psycopg.Error) -> int:
    return 409 if isinstance(error, psycopg.errors.IntegrityError) else 400
