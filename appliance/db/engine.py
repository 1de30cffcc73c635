"""Build the SQLAlchemy engine for SQLite (embedded) or PostgreSQL (production) from the same settings."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from appliance.config import Settings


def build_engine(settings: Settings, url: str | None = None, *, bounded: bool = True) -> Engine:
    """An engine for ``url`` (default: the configured database), tuned for its backend.

    ``bounded``: on PostgreSQL, every statement, lock wait and idle transaction of its connections is
    limited by the ``database`` settings (the API and the workers); migrations and the purge pass False."""
    target = make_url(url or settings.database_url)
    db = settings.database
    if target.get_backend_name() == "sqlite":
        if target.database and target.database != ":memory:":
            Path(target.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            target,
            echo=db.echo,
            connect_args={"timeout": db.sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
            pool_size=db.pool_size,
            max_overflow=0,
            pool_timeout=db.pool_timeout,
        )
        event.listen(engine, "connect", _sqlite_pragmas(db.sqlite_busy_timeout_ms))
        turns = _WriterTurns(db.sqlite_busy_timeout_ms / 1000)
        event.listen(engine, "begin", turns.begin)
        event.listen(engine, "commit", turns.end)
        event.listen(engine, "rollback", turns.end)
        event.listen(engine.pool, "checkin", turns.checked_in)
        return engine
    if target.drivername == "postgresql":
        target = target.set(drivername="postgresql+psycopg")
    # A bounded pool: max_overflow above 0 lets a burst open hundreds of connections.
    return create_engine(
        target,
        echo=db.echo,
        pool_size=db.pool_size,
        max_overflow=0,
        pool_timeout=db.pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args(settings, bounded=bounded),
    )


def connect_args(settings: Settings, *, bounded: bool = True) -> dict[str, Any]:
    """libpq connection parameters for PostgreSQL: the connect timeout, the name the server shows, and
    (``bounded``) the server-side timeouts, set once per connection so that no request pays for them."""
    db = settings.database
    args: dict[str, Any] = {"connect_timeout": db.connect_timeout, "application_name": "forge-appliance"}
    if bounded:
        limits = {
            "statement_timeout": db.statement_timeout,
            "lock_timeout": db.lock_timeout,
            "idle_in_transaction_session_timeout": db.idle_in_transaction_timeout,
        }
        args["options"] = " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items())
    return args


class _WriterTurns:
    """SQLite: one writer of this process at a time asks SQLite for the write lock.

    SQLite's busy handler polls, sleeping up to 100 ms between tries and favouring no one, so the threads
    of one process that all wait there take turns badly: one could wait out the whole busy timeout while
    others got the lock again and again ("database is locked" under a dozen concurrent writers). Here
    they queue on a lock that wakes the next one at once, and SQLite's busy wait is left to the writers
    of other processes. A turn is taken just before BEGIN IMMEDIATE (so the CPU work of a request before
    its first statement, such as hashing a password, holds no one up) and given back as the transaction
    ends. Re-entrant: a request with two writing sessions takes it once for each, on one thread.
    """

    def __init__(self, wait: float):
        self.wait = wait
        self.lock = threading.RLock()

    def begin(self, connection: Any) -> None:
        # The driver's own transaction handling is off (isolation_level None, below): SQLAlchemy emits
        # BEGIN, IMMEDIATE for scopes that will write (Database.new_session(write=True)).
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "IMMEDIATE":
            if not self.lock.acquire(timeout=self.wait):
                raise OperationalError(
                    "BEGIN IMMEDIATE",
                    None,
                    sqlite3.OperationalError("database is locked (no write turn came)"),
                )
            connection.info[_TURN] = connection.info.get(_TURN, 0) + 1
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Any) -> None:
        for _ in range(connection.info.pop(_TURN, 0)):
            self.lock.release()

    def checked_in(self, dbapi_connection: Any, record: Any) -> None:
        # A connection given back without its transaction's end being seen (it was invalidated).
        for _ in range(record.info.pop(_TURN, 0)):
            self.lock.release()


_TURN = "appliance_writer_turn"


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event start transactions (pysqlite's own BEGIN is always DEFERRED and
        # is issued lazily, before the first write only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect
