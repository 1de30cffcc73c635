"""The Huey instance on a real Redis: a durable job's message runs with no revocation lookup (its job is
cancelled in its row), while an ordinary task can still be revoked through Huey."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.config import Settings
from appliance.db.session import Database
from appliance.models import Job, JobState, WorkerHeartbeat
from appliance.services.jobs import durable as jobs
from appliance.workers import jobs as job_runner
from appliance.workers import queue, runtime, tasks
from tests.support import make_settings

pytestmark = pytest.mark.redis


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Iterator[Settings]:
    built = make_settings(tmp_path, None, redis_url)
    database = Database(built)
    queue.configure(built)
    runtime.install(runtime.WorkerRuntime(settings=built, database=database))
    runner = job_runner.Runner(built, database, "test-worker", job_runner.push)
    job_runner.install(runner)
    jobs.install_pusher(job_runner.push)
    try:
        yield built
    finally:
        jobs.install_pusher(None)
        job_runner.install(None)
        runner.stop()
        database.dispose()


def _commands() -> dict[str, int]:
    stats = queue.huey.storage.conn.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def test_a_durable_jobs_message_runs_with_no_revocation_lookup(settings: Settings) -> None:
    database = runtime.current().database
    with database.session_scope() as session:
        job_id = jobs.enqueue(session, tasks.NOOP, {"echo": 7}, tenant_id=None).id
    message = queue.huey.dequeue()
    assert message is not None
    queue.huey.storage.conn.config_resetstat()
    queue.huey.execute(message)
    commands = _commands()
    assert "hmget" not in commands  # the revocation keys Huey reads before a task
    assert "hdel" not in commands  # and the one it deletes after
    with database.session_scope(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.state, job.result) == (JobState.SUCCEEDED, 7)


def test_an_ordinary_task_can_still_be_revoked(settings: Settings) -> None:
    result = tasks.heartbeat()
    result.revoke()
    message = queue.huey.dequeue()
    assert message is not None
    queue.huey.storage.conn.config_resetstat()
    queue.huey.execute(message)
    assert _commands().get("hmget", 0) >= 1
    with runtime.current().database.session_scope(write=False) as session:
        assert session.scalars(select(WorkerHeartbeat)).all() == []
