"""Thin task wrappers: parse the arguments, call one service inside a session scope, return the result."""

from __future__ import annotations

import os
import socket

from huey import crontab

from appliance.services import heartbeats
from appliance.workers import runtime
from appliance.workers.queue import periodic_task, task


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@task(retries=3, retry_delay=5, name="system.heartbeat")
def heartbeat() -> dict[str, object]:
    """Record that this worker is alive; returns the worker's name and its count of beats."""
    name = worker_name()
    with runtime.current().database.session_scope() as session:
        row = heartbeats.record(session, name)
        return {"worker": name, "beats": row.beats}


@periodic_task(crontab(minute="*"), name="system.heartbeat_periodic")
def heartbeat_periodic() -> None:
    """Every minute, so that /health can say when a worker was last seen."""
    heartbeat.call_local()
