"""How requests find a lane (tests/gateway/test_lanes.py covers one lane).

The pool is a stand-in: what matters here is how many connections are asked
for, and that requests fail after one pool timeout when the database is
unreachable, as they did with a checkout per request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pgfortress_gateway.database import Database, Query
from pgfortress_gateway.errors import UnavailableError
from psycopg import sql
from psycopg_pool import PoolTimeout

QUERY = Query(sql.SQL("SELECT 1"))


class UnreachablePool:
    """Every checkout waits a moment, then times out."""

    def __init__(self) -> None:
        self.asked = 0

    async def getconn(self) -> Any:
        self.asked += 1
        await asyncio.sleep(0.01)
        raise PoolTimeout("couldn't get a connection after 0.01 sec")


def test_an_unreachable_database_fails_each_request_after_one_wait() -> None:
    async def main() -> tuple[list[object], int]:
        database = Database("", min_size=1, max_size=3, timeout=0.01)
        pool = UnreachablePool()
        database._pool = pool  # type: ignore[assignment]
        calls = [database.run_as("web_user", "{}", QUERY) for _ in range(6)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        return list(results), pool.asked

    results, asked = asyncio.run(main())

    assert all(isinstance(result, UnavailableError) for result in results)
    # Two lanes at most (one connection stays in the pool): the other
    # requests waited for those two and failed with them.
    assert asked == 2


@pytest.mark.parametrize(("max_size", "lanes"), [(1, 1), (2, 1), (10, 9)])
def test_one_connection_stays_out_of_the_lanes(max_size: int, lanes: int) -> None:
    async def main() -> int:
        database = Database("", min_size=1, max_size=max_size, timeout=1)
        return database._lane_limit

    assert asyncio.run(main()) == lanes
