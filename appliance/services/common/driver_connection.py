"""Driver connections kept open by the workers' hot paths on PostgreSQL: one per thread, outside the pool.

A statement on a connection a thread keeps, in autocommit mode and prepared once, costs about a third of
the CPU of a pooled SQLAlchemy transaction (tests/bench/RESULTS.md, issue 6). Each connection is taken from
the engine's pool and detached from it, so that it is made exactly as the pool makes its own (timeouts,
adapters, everything the engine sets); it then shows ``application_name`` in pg_stat_activity and no longer
counts against the pool's size. A connection that fails is closed; a kept one that the server closed since
(a restart, an idle timeout) is replaced and the work run once more on the new one. Any other error, or one
on a connection just made, is the caller's, as a SQLAlchemy DBAPIError.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

Cursor = psycopg.Cursor[Any]


class KeptConnections:
    """A driver connection per calling thread; safe to call from any thread."""

    def __init__(self, engine: Engine, application_name: str):
        self.engine = engine
        self.application_name = application_name
        self._local = threading.local()
        self._open: set[psycopg.Connection[Any]] = set()
        self._lock = threading.Lock()

    def execute(self, sql: str, params: dict[str, Any]) -> Cursor:
        """Run one statement (committed at once), prepared; the cursor is returned to read the outcome."""
        return self.run(lambda cursor: cursor.execute(sql, params, prepare=True))

    def run(self, work: Callable[[Cursor], T], *, transaction: bool = False) -> T:
        """``work(cursor)`` on this thread's connection; with ``transaction``, its statements are sent in
        one pipeline inside one transaction (all or none). ``work`` may run twice (see the module's
        docstring), so it must be safe to repeat."""
        for last in (False, True):
            kept: Cursor | None = getattr(self._local, "cursor", None)
            fresh = kept is None or kept.connection.closed
            cursor = self._connect() if fresh else kept
            assert cursor is not None
            conn = cursor.connection
            try:
                if not transaction:
                    return work(cursor)
                with conn.pipeline(), conn.transaction():
                    return work(cursor)
            except psycopg.Error as exc:
                broken = conn.closed or conn.broken
                if broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self._drop(conn)
                if last or fresh or not broken:
                    raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
        raise AssertionError("unreachable")

    def _connect(self) -> Cursor:
        proxied = self.engine.raw_connection()  # raises SQLAlchemy's errors when the database is down
        try:
            conn = proxied.driver_connection
            assert isinstance(conn, psycopg.Connection)
            proxied.detach()
            conn.rollback()
            conn.autocommit = True
            conn.execute("SELECT set_config('application_name', %s, false)", (self.application_name,))
        except Exception:
            proxied.close()
            raise
        with self._lock:
            self._open.add(conn)
        self._local.cursor = cursor = conn.cursor()
        return cursor

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._open.discard(conn)
        self._local.cursor = None
        with contextlib.suppress(Exception):  # it is being thrown away
            conn.close()

    def close(self) -> None:
        """Close every thread's connection (the process is stopping)."""
        with self._lock:
            open_, self._open = list(self._open), set()
        for conn in open_:
            with contextlib.suppress(Exception):  # stopping: nothing to do about it
                conn.close()


def compiled(statement: Any, dialect: Any) -> tuple[str, dict[str, Any]]:
    """A Core statement as the driver's SQL, with the values it binds itself (constants in it)."""
    compiled = statement.compile(dialect=dialect)
    fixed = {
        compiled.bind_names[bind]: bind.effective_value
        for bind in compiled.binds.values()
        if not bind.required
    }
    return compiled.string, fixed
