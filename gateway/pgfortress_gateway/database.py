"""The gateway's side of PostgreSQL: a bounded pool and one transaction per request.

Each request sends two statements in one pipeline, on a pooled connection that
logged in as the authenticator: ``SELECT set_config('role', …, true),
set_config('request.jwt.claims', …, true), set_config('statement_timeout', …,
true)`` and the request's own statement. Both run in the one implicit
transaction that ends at the pipeline's Sync, so the role and the claims last
only for that request and the next one on the same connection starts as the
bare authenticator again. They go through libpq's pipeline directly, as
prepared statements, without psycopg's cursors, pipelined on a few
connections held for that ("lanes", :mod:`._lanes`): a request queues its
statements behind the ones already sent on a lane instead of waiting for a
connection of its own. One connection of the pool stays out of the lanes for
the catalog, the membership check and the health check."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ._lanes import Lane
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
        self._lane_limit = max(1, max_size - 1)
        self._lanes: list[Lane] = []
        self._opening = 0
        self._lane_waiters: list[asyncio.Future[None]] = []
        self._returning: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        for lane in list(self._lanes):
            lane.close()
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)
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
        lane = await self._lane()
        try:
            # One transaction, queued on a lane's pipeline (see _lanes).
            setup_pair = (setup, (role, claims_json, timeout))
            return await lane.run([setup_pair, (query.sql, query.params)])
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

    async def _lane(self) -> Lane:
        """An idle lane, else a new one while under the limit, else the
        least busy one."""
        if idle := next((lane for lane in self._lanes if not lane.load), None):
            return idle
        if len(self._lanes) + self._opening < self._lane_limit:
            return await self._open_lane()
        if self._lanes:
            return min(self._lanes, key=lambda lane: lane.load)
        # Every lane is still being opened: wait for one, then choose again;
        # if opening it failed, so does this request (one wait, as a pool
        # checkout would have been).
        waiter = asyncio.get_running_loop().create_future()
        self._lane_waiters.append(waiter)
        await waiter
        return await self._lane()

    async def _open_lane(self) -> Lane:
        self._opening += 1
        failed: BaseException | None = None
        try:
            conn = await self._pool.getconn()
            try:
                lane = Lane(conn, self._lane_closed)
            except BaseException:
                await self._pool.putconn(conn)
                raise
            self._lanes.append(lane)
            return lane
        except (PoolTimeout, psycopg.OperationalError) as error:
            failed = UnavailableError("the database is busy or unreachable")
            raise failed from error
        except BaseException as error:
            failed = error
            raise
        finally:
            self._opening -= 1
            waiters, self._lane_waiters = self._lane_waiters, []
            for waiter in waiters:
                if waiter.done():
                    continue
                if failed is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(
                        UnavailableError("the database is busy or unreachable")
                    )

    def _lane_closed(self, lane: Lane) -> None:
        """A lane stopped (its connection failed): the pool replaces it."""
        if lane in self._lanes:
            self._lanes.remove(lane)
        task = asyncio.get_running_loop().create_task(self._pool.putconn(lane.conn))
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)


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
