"""Durable jobs with a real `appliance worker` process on every database and queue backend: none is lost
when the worker is SIGKILLed mid-batch, nor when the hand-over to the queue after the commit is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance.config import Settings
from appliance.db.session import Database
from appliance.models import Job, JobState
from appliance.services.jobs import durable as jobs
from appliance.workers import jobs as job_runner
from appliance.workers import queue
from appliance.workers.tasks import NOOP
from tests.support import make_settings, settings_env, wait_for

FAST_RECOVERY = {"lease_seconds": 2, "reap_interval": 0.3, "requeue_after": 2}


@pytest.fixture
def settings(tmp_path: Path, database_url: str, queue_url: str) -> Iterator[Settings]:
    settings = make_settings(tmp_path, database_url, queue_url, jobs=FAST_RECOVERY)
    queue.configure(settings)
    yield settings
    jobs.install_pusher(None)


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "appliance", "worker", "--workers", "2"],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def enqueue(database: Database, count: int, wait_ms: int) -> list[uuid.UUID]:
    with database.session_scope() as session:
        return [
            jobs.enqueue(session, NOOP, {"wait_ms": wait_ms, "echo": n}, tenant_id=None).id
            for n in range(count)
        ]


def states(database: Database) -> dict[str, int]:
    with database.session_scope(write=False) as session:
        rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    return {str(state): int(count) for state, count in rows}


def test_no_job_is_lost_when_the_worker_is_killed_mid_batch(settings: Settings, tmp_path: Path) -> None:
    database = Database(settings)
    log = tmp_path / "worker.log"
    jobs.install_pusher(job_runner.push)
    ids = enqueue(database, 150, wait_ms=60)
    worker = start_worker(settings, log)
    try:
        # Kill it while it holds jobs: a fifth done, and at least one running at this very moment.
        wait_for(
            lambda: (now := states(database)).get("succeeded", 0) >= 30 and now.get("running", 0) > 0,
            timeout=60,
            what="a fifth of the jobs done and one running",
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        in_flight = states(database).get("running", 0)
        assert in_flight > 0, (states(database), log.read_text())
        worker = start_worker(settings, log)
        wait_for(lambda: states(database) == {"succeeded": 150}, timeout=120, what="every job to succeed")
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)
    with database.session_scope(write=False) as session:
        done = session.execute(select(Job.result, Job.attempts).where(Job.id.in_(ids))).all()
    database.dispose()
    assert sorted(row.result for row in done) == list(range(150))
    # The jobs the killed worker held ran again; each ran at most twice.
    retried = [row for row in done if row.attempts == 2]
    assert len(retried) >= in_flight
    assert all(row.attempts <= 2 for row in done)


def test_a_job_whose_hand_over_was_lost_still_runs(settings: Settings, tmp_path: Path) -> None:
    database = Database(settings)
    jobs.install_pusher(None)  # as a process with no queue (the CLI), or one that died right after commit
    ids = enqueue(database, 5, wait_ms=0)
    assert queue.depth(queue.huey) == 0
    worker = start_worker(settings, tmp_path / "worker.log")
    try:
        wait_for(lambda: states(database) == {JobState.SUCCEEDED.value: 5}, timeout=60, what="the reaper")
    finally:
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=60)
    with database.session_scope(write=False) as session:
        results = sorted(session.scalars(select(Job.result).where(Job.id.in_(ids))))
    database.dispose()
    assert results == [0, 1, 2, 3, 4]
