"""The Huey instance (the one sanctioned module-level object) and its configuration from Settings.

Task decorators need the instance at import time, but the queue's backend is known only once Settings are
built, so the instance starts unconfigured (any use raises) and ``configure()`` gives it its storage:
Redis when ``queue.url`` is a redis URL, SQLite otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from huey import Huey
from huey.api import Task
from huey.storage import BaseStorage, RedisStorage, SqliteStorage

from appliance.config import Settings
from appliance.errors import Unavailable


class UnconfiguredStorage(BaseStorage):  # type: ignore[misc]
    """Refuses every operation, so a task is never silently dropped before configure()."""

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__") or name in ("name", "blocking", "priority"):
            return object.__getattribute__(self, name)
        raise RuntimeError("the task queue is not configured: call appliance.workers.queue.configure()")


class UnrevokedTask(Task):  # type: ignore[misc]
    """The base of a task that is never revoked through Huey (a durable job is cancelled in its row, which
    its claim reads): Huey then looks up no revocation key before running it, and deletes none after it
    ran, two of the three round trips to Redis each run of a task costs (tests/bench/RESULTS.md, issue 15).
    """

    revocable = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.revoke_id = None


class ApplianceHuey(Huey):  # type: ignore[misc]
    """Huey, for UnrevokedTask's sake."""

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        if isinstance(task, Task) and not getattr(task, "revocable", True):
            return False
        revoked: bool = super().is_revoked(task, timestamp, peek)
        return revoked

    def delete(self, key: str | None) -> Any:
        if key is None:  # an UnrevokedTask ran: it has no revocation key to clear
            return False
        return super().delete(key)


huey = ApplianceHuey("appliance", storage_class=UnconfiguredStorage, utc=True)

TaskDecorator = Callable[[Callable[..., Any]], Any]


def task(**options: Any) -> TaskDecorator:
    """``huey.task`` with a type, so that strict typing holds in the task modules."""
    decorator: TaskDecorator = huey.task(**options)
    return decorator


def periodic_task(schedule: Any, **options: Any) -> TaskDecorator:
    """``huey.periodic_task`` with a type."""
    decorator: TaskDecorator = huey.periodic_task(schedule, **options)
    return decorator


def build_storage(settings: Settings) -> Any:
    """The storage backend described by the settings."""
    url, name = settings.queue_url, settings.queue.name
    if url.startswith("sqlite:///"):
        filename = url.removeprefix("sqlite:///")
        return SqliteStorage(
            name=name, filename=filename, timeout=settings.database.sqlite_busy_timeout_ms / 1000
        )
    pool = redis.ConnectionPool.from_url(
        url,
        socket_connect_timeout=settings.database.connect_timeout,
        socket_timeout=10,  # above the consumer's 1 s blocking read
        health_check_interval=30,
    )
    return RedisStorage(name=name, connection_pool=pool)


def configure(settings: Settings) -> Huey:
    """Point the module's Huey instance at the configured backend and return it."""
    storage = build_storage(settings)
    huey.name = settings.queue.name
    huey.storage = storage
    return huey


def is_redis(instance: Huey) -> bool:
    return isinstance(instance.storage, RedisStorage)


def ping(instance: Huey) -> None:
    """Raise Unavailable unless the queue's backend answers."""
    storage = instance.storage
    try:
        if isinstance(storage, RedisStorage):
            storage.conn.ping()
        else:
            storage.sql("SELECT 1", results=True)
    except Exception as exc:
        raise Unavailable("the queue is unavailable", reason=_first_line(exc)) from exc


def depth(instance: Huey) -> int:
    """Tasks waiting in the queue."""
    count: int = instance.pending_count()
    return count


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
