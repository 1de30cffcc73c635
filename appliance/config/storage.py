"""Settings of where the appliance keeps its data: the database and Huey's queue."""

from __future__ import annotations

from pydantic import Field, field_validator

from appliance.config.section import Section


class DatabaseSettings(Section):
    url: str | None = None
    """SQLAlchemy URL of the database. Unset: a SQLite file in the data directory.
    PostgreSQL: postgresql+psycopg://user:password@host:5432/dbname"""

    migrations_url: str | None = None
    """URL used by `appliance migrate` (the schema owner). Unset: the same as url. When its user differs
    from url's, `appliance migrate` grants url's role what the API and workers need (no BYPASSRLS: row-level
    security keeps tenants apart), and `appliance tenant purge` connects with it."""

    pool_size: int = Field(default=10, ge=1, le=200)
    """Connections each process keeps open to PostgreSQL. The pool never grows past this."""

    pool_timeout: float = Field(default=5.0, gt=0)
    """Seconds a request waits for a free connection before failing with 503."""

    statement_timeout: float = Field(default=30.0, ge=0)
    """PostgreSQL: seconds one statement of the API or a worker may run before it is cancelled (503 to an
    API client, a retry for a job). 0: no limit. Migrations and `appliance tenant purge` are not limited."""

    lock_timeout: float = Field(default=5.0, ge=0)
    """PostgreSQL: seconds a statement may wait for a lock held by another transaction (a row being
    changed, an audit chain being appended to) before it fails with 503. 0: no limit."""

    idle_in_transaction_timeout: float = Field(default=60.0, ge=0)
    """PostgreSQL: a connection idle inside a transaction this long is closed by the server, releasing its
    locks (a safety net: the appliance never leaves a transaction open while it waits). 0: never."""

    connect_timeout: int = Field(default=5, ge=1)
    """Seconds allowed to open a connection before the database counts as down."""

    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    """How long SQLite waits for a lock held by another process, in milliseconds."""

    echo: bool = False
    """Log every SQL statement (noisy; for debugging only)."""

    @field_validator("url", "migrations_url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"{value.split(':', 1)[0]!r} is not supported: use sqlite:/// or postgresql+psycopg://"
            )
        return value


class QueueSettings(Section):
    url: str | None = None
    """Where Huey keeps its queue: redis://host:6379/0, or sqlite:///path. Unset: SQLite in the data dir."""

    name: str = Field(default="appliance", pattern=r"^[A-Za-z0-9_.-]+$")
    """Queue name; several appliances may share one Redis with different names."""

    workers: int = Field(default=4, ge=1, le=256)
    """Threads each worker process runs tasks on."""

    periodic: bool = True
    """Whether `appliance worker` runs the periodic scheduler (exactly one worker process should)."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://", "sqlite:///")):
            raise ValueError(f"{value!r} is not a queue URL: use redis://host:port/db or sqlite:///path")
        return value
