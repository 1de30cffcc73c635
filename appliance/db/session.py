"""The database handle and the session scope: the only place that commits or rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from appliance.config import Settings
from appliance.db.engine import build_engine
from appliance.errors import ApplianceError, Conflict, Unavailable

_SQLITE_BUSY = 5  # SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT = 517)


class Database:
    """One engine and its session factory, built once per process from Settings."""

    def __init__(self, settings: Settings, url: str | None = None, *, bounded: bool = True):
        self.engine: Engine = build_engine(settings, url, bounded=bounded)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: a transaction that reads and then writes must hold the write lock from its start
        # (BEGIN IMMEDIATE), or it fails at once with "database is locked" when another writer committed
        # after its first read. Only writing scopes ask for it, so readers never wait for each other.
        self._writers = sessionmaker(
            self.engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def new_session(self, *, write: bool = True) -> Session:
        """A session that has not touched the database yet (no connection, no transaction): cheap enough to
        make on the event loop. Run it inside :meth:`transaction`, which commits or rolls back and closes it.

        ``write=False`` marks a session that only reads (GET requests): on SQLite it then takes no write lock
        up front."""
        return (self._writers if write else self.sessions)()

    def reader_was_locked_out(self, exc: BaseException, session: Session) -> bool:
        """Whether ``exc`` is SQLite refusing the write lock to ``session``, begun as a reader.

        A deferred transaction that has read and then writes must upgrade its lock; when another connection
        holds the write lock SQLite refuses at once ("database is locked", no busy wait: waiting could
        deadlock two upgraders). The work is then to be run again as a writer (:meth:`as_writer`)."""
        cause = exc.__cause__ if isinstance(exc, Unavailable) else exc
        orig = getattr(cause, "orig", None)
        code = getattr(orig, "sqlite_errorcode", None)
        return (
            self.backend == "sqlite"
            and isinstance(code, int)
            and code & 0xFF == _SQLITE_BUSY
            and session.bind is not self._writers.kw["bind"]
        )

    def as_writer(self, session: Session) -> None:
        """Make the (closed) ``session``'s next transaction a writer's: on SQLite, BEGIN IMMEDIATE."""
        session.bind = self._writers.kw["bind"]

    @contextmanager
    def session_scope(self, *, write: bool = True) -> Iterator[Session]:
        """A session committed when the block succeeds, rolled back when it raises (`transaction`)."""
        session = self.new_session(write=write)
        with self.transaction(session):
            yield session

    @contextmanager
    def transaction(self, session: Session) -> Iterator[Session]:
        """Commit ``session`` when the block succeeds, roll it back when it raises, and close it either way.

        Database errors become the appliance's: a lost connection or a timeout is Unavailable (its driver
        message goes to the log, never to a client), a broken uniqueness rule a Conflict. An ApplianceError
        raised with ``keep_changes`` (a refusal that must leave a trace, such as a failed login's audit
        record) is committed before it propagates."""
        try:
            yield session
            session.commit()
        except (OperationalError, PoolTimeout) as exc:
            session.rollback()
            raise unavailable(exc) from exc
        except IntegrityError as exc:
            # A uniqueness or reference rule the services' own checks could not see: a concurrent request
            # made the same change first. The driver's message (table and values) is not shown.
            session.rollback()
            raise Conflict(
                "the change conflicts with one made at the same time; read the current state and retry",
                code="CONCURRENT_CHANGE",
            ) from exc
        except ApplianceError as exc:
            if exc.keep_changes:
                session.commit()
            else:
                session.rollback()
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> str | None:
        """The schema revision the database is at (None if never migrated); Unavailable if it is down."""
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                revision: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                return revision
        except (DBAPIError, PoolTimeout) as exc:
            raise unavailable(exc) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def unavailable(exc: Exception) -> Unavailable:
    """The error for a database that did not answer: a message fit for any client, and the driver's reason
    (which names the host, the port and the role) for the log and the admin's commands only."""
    if isinstance(exc, PoolTimeout):
        return Unavailable("the database is busy: no connection was free in time", reason=driver_reason(exc))
    return Unavailable("the database is unavailable", reason=driver_reason(exc))


def driver_reason(exc: Exception) -> str:
    """The first line of the driver's message, without SQL or parameters."""
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]
