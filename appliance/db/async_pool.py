"""Connections to PostgreSQL on the API's event loop (psycopg's own async pool), for the hot read paths
that must not pay a thread hop and the ORM: each request holds a connection only while its query runs.

Everything else goes through the SQLAlchemy session scope (appliance.db.session). The pool is opened and
closed with the API process (create_app's lifespan), bounded like the other pool (``database.pool_size``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from appliance.config import Settings
from appliance.db.engine import connect_args
from appliance.db.session import driver_reason
from appliance.errors import Unavailable

T = TypeVar("T")
Connection = psycopg.AsyncConnection[tuple[object, ...]]


def conninfo(url: str) -> str:
    """A libpq URI from a SQLAlchemy URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncDatabase:
    def __init__(self, settings: Settings) -> None:
        db = settings.database
        self._timeout = db.pool_timeout
        self.pool = AsyncConnectionPool(
            conninfo(settings.database_url),
            min_size=1,
            max_size=db.pool_size,
            timeout=db.pool_timeout,
            kwargs=connect_args(settings),
            open=False,
            name="appliance-async",
        )

    async def open(self) -> None:
        # Not waiting for the first connection: a database that is down must not stop the API starting
        # (/health/ready reports it; requests get 503 until it is back).
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def read(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """The result of ``work``, a read that changes nothing, on a pooled connection.

        After the database restarts, every idle connection in the pool is dead and only says so when used:
        a read that fails on one has the pool check its idle connections (dropping the dead ones) and is
        tried once more, so readiness saying 200 and the next request failing never meet."""
        try:
            async with self.connection() as connection:
                return await work(connection)
        except Unavailable as exc:
            if not isinstance(exc.__cause__, psycopg.OperationalError):
                raise
        await self.pool.check()
        async with self.connection() as connection:
            return await work(connection)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection in a transaction: committed when the block ends, rolled back when it raises."""
        try:
            async with self.pool.connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise Unavailable(
                "the database is busy: no connection was free in time",
                reason=f"no connection within {self._timeout:g} s",
            ) from exc
        except psycopg.OperationalError as exc:
            raise Unavailable("the database is unavailable", reason=driver_reason(exc)) from exc
