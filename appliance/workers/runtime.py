"""What a worker process shares between its tasks: the settings and the database, set once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import Settings
from appliance.db.session import Database


@dataclass(frozen=True)
class WorkerRuntime:
    settings: Settings
    database: Database


_current: WorkerRuntime | None = None


def install(runtime: WorkerRuntime) -> None:
    """Make ``runtime`` the one that tasks in this process use."""
    global _current  # noqa: PLW0603  (one per process, set by the worker's start-up)
    _current = runtime


def current() -> WorkerRuntime:
    if _current is None:
        raise RuntimeError("no worker runtime: tasks run inside `appliance worker`")
    return _current
