"""Connections to PostgreSQL on the API's event loop (psycopg's own async pool), for the hot read paths
that must not pay a thread hop and the ORM: each request holds a connection only while its query runs.

Everything else goes through the SQLAlchemy session scope (appliance.db.session). The pool is opened and
closed with the API process (create_app's lifespan), bounded like the other pool (``database.pool_size``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from appliance.config import Settings
from appliance.errors import Unavailable


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
            kwargs={"connect_timeout": db.connect_timeout, "application_name": "forge-appliance"},
            open=False,
            name="appliance-async",
        )

    async def open(self) -> None:
        # Not waiting for the first connection: a database that is down must not stop the API starting
        # (/health/ready reports it; requests get 503 until it is back).
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
        """A connection in a transaction: committed when the block ends, rolled back when it raises."""
        try:
            async with self.pool.connection() as connection:
                yield connection
        except PoolTimeout as exc:
            raise Unavailable(
                f"the database is unavailable: no connection within {self._timeout:g} s"
            ) from exc
        except psycopg.OperationalError as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Unavailable(f"the database is unavailable: {reason}") from exc
