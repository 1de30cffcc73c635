"""The job runner in this process on each database: a body's effect and its job's success commit together,
failures retry on the kind's schedule and end dead, a body may ask for a delay or give up, async bodies run
on the worker's loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.session import Database
from appliance.models import Job, JobState, WorkerHeartbeat
from appliance.services.jobs import durable as jobs
from appliance.services.jobs import leases
from appliance.workers.jobs import JobContext, Runner, async_handler, handler
from tests.support import make_settings, wait_for

WRITES = jobs.kind("test.writes", max_attempts=3, delays=(0,))
FLAKY = jobs.kind("test.flaky", max_attempts=3, delays=(7, 11), jitter=0)
POLITE = jobs.kind("test.polite", max_attempts=3, delays=(7,), jitter=0)
HOPELESS = jobs.kind("test.hopeless", max_attempts=5)
NETWORK = jobs.kind("test.network", max_attempts=2, delays=(0,))

failures: dict[str, int] = {}


@handler(WRITES)
def writes(ctx: JobContext, session: Session, payload: dict[str, Any]) -> str:
    session.add(WorkerHeartbeat(worker=payload["name"], beats=ctx.attempt))
    if payload.get("fail"):
        raise RuntimeError("the body failed after its write")
    return "written"


@handler(FLAKY)
def flaky(_ctx: JobContext, _session: Session, payload: dict[str, Any]) -> int:
    failures[payload["key"]] = failures.get(payload["key"], 0) + 1
    raise ValueError(f"failure {failures[payload['key']]}")


@handler(POLITE)
def polite(_ctx: JobContext, _session: Session, _payload: dict[str, Any]) -> None:
    raise jobs.RetryLater("the receiver said Retry-After: 120", delay=120)


@handler(HOPELESS)
def hopeless(_ctx: JobContext, _session: Session, _payload: dict[str, Any]) -> None:
    raise jobs.PermanentFailure("the endpoint is gone (410)")


@async_handler(NETWORK, concurrency=2)
async def network(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    if payload.get("fail") and ctx.attempt == 1:
        raise RuntimeError("the receiver hung up")
    return {"attempt": ctx.attempt}


Pushed = list[tuple[uuid.UUID, dt.datetime | None]]


@pytest.fixture
def runner(tmp_path: Path, database_url: str) -> Iterator[tuple[Runner, Pushed]]:
    settings = make_settings(tmp_path, database_url)
    database = Database(settings)
    pushed: Pushed = []

    def push(items: Sequence[tuple[uuid.UUID, dt.datetime | None]]) -> None:
        pushed.extend(items)

    jobs.install_pusher(push)
    run = Runner(settings, database, "test-worker", push)
    try:
        yield run, pushed
    finally:
        run.stop()
        jobs.install_pusher(None)
        database.dispose()


def _enqueue(runner: Runner, kind: jobs.Kind, payload: dict[str, Any]) -> uuid.UUID:
    with runner.database.session_scope() as session:
        return jobs.enqueue(session, kind, payload, tenant_id=None).id


def _job(runner: Runner, job_id: uuid.UUID) -> Job:
    with runner.database.session_scope(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _beats(runner: Runner, name: str) -> list[int]:
    with runner.database.session_scope(write=False) as session:
        return list(session.scalars(select(WorkerHeartbeat.beats).where(WorkerHeartbeat.worker == name)))


def _due_now(runner: Runner, job_id: uuid.UUID) -> None:
    """Bring a retry's time forward, as waiting for it would."""
    with runner.database.session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.run_at = dt.datetime.now(dt.UTC)


def test_a_body_and_its_success_commit_together(runner: tuple[Runner, Pushed]) -> None:
    run, _ = runner
    job_id = _enqueue(run, WRITES, {"name": "ok"})
    run.run(job_id)
    job = _job(run, job_id)
    assert (job.state, job.result, job.attempts) == (JobState.SUCCEEDED, "written", 1)
    assert _beats(run, "ok") == [1]
    run.run(job_id)  # a second message for the same job (a re-push) does nothing
    assert _job(run, job_id).attempts == 1


def test_a_failed_body_leaves_no_write_behind(runner: tuple[Runner, Pushed]) -> None:
    run, pushed = runner
    job_id = _enqueue(run, WRITES, {"name": "bad", "fail": True})
    pushed.clear()
    run.run(job_id)
    job = _job(run, job_id)
    assert job.state == JobState.QUEUED
    assert job.last_error == "RuntimeError: the body failed after its write"
    assert _beats(run, "bad") == []
    assert [item[0] for item in pushed] == [job_id]  # handed again for its next attempt


def test_failures_follow_the_kinds_schedule_then_the_job_is_dead(runner: tuple[Runner, Pushed]) -> None:
    run, pushed = runner
    key = str(uuid.uuid4())
    job_id = _enqueue(run, FLAKY, {"key": key})
    delays = []
    for _ in range(3):
        pushed.clear()
        before = dt.datetime.now(dt.UTC)
        run.run(job_id)
        job = _job(run, job_id)
        if job.state == JobState.QUEUED:
            delays.append(round((job.run_at - before).total_seconds()))
            assert pushed[0][1] == job.run_at  # handed to the queue's schedule for that time
            _due_now(run, job_id)
    job = _job(run, job_id)
    assert delays == [7, 11]
    assert (job.state, job.attempts, job.last_error) == (JobState.DEAD, 3, "ValueError: failure 3")
    assert failures[key] == 3


def test_a_body_can_ask_for_its_delay_or_give_up(runner: tuple[Runner, Pushed]) -> None:
    run, _ = runner
    polite_id = _enqueue(run, POLITE, {})
    hopeless_id = _enqueue(run, HOPELESS, {})
    before = dt.datetime.now(dt.UTC)
    run.run(polite_id)
    run.run(hopeless_id)
    polite_job, hopeless_job = _job(run, polite_id), _job(run, hopeless_id)
    assert polite_job.state == JobState.QUEUED
    assert 119 <= (polite_job.run_at - before).total_seconds() <= 125
    assert (hopeless_job.state, hopeless_job.attempts) == (JobState.DEAD, 1)
    assert hopeless_job.last_error == "the endpoint is gone (410)"


def test_an_unknown_kind_is_dead_with_the_reason(runner: tuple[Runner, Pushed]) -> None:
    run, _ = runner
    job_id = _enqueue(run, jobs.Kind("test.nobody-handles-this"), {})
    run.run(job_id)
    job = _job(run, job_id)
    assert job.state == JobState.DEAD
    assert "no handler" in (job.last_error or "")


def test_async_bodies_run_on_the_workers_loop(runner: tuple[Runner, Pushed]) -> None:
    run, _ = runner
    ids = [_enqueue(run, NETWORK, {"fail": n == 0}) for n in range(5)]
    for job_id in ids:
        run.run(job_id)  # returns at once: the body runs on the loop
    wait_for(lambda: all(_job(run, i).state != JobState.RUNNING for i in ids), what="async jobs to finish")
    first = _job(run, ids[0])
    assert first.state == JobState.QUEUED
    assert first.last_error == "RuntimeError: the receiver hung up"
    run.run(ids[0])
    wait_for(lambda: _job(run, ids[0]).state == JobState.SUCCEEDED, what="the retry to succeed")
    assert [_job(run, i).result for i in ids] == [{"attempt": 2}] + [{"attempt": 1}] * 4
    assert run.running() == 0


def test_leases_are_renewed_while_a_job_runs(runner: tuple[Runner, Pushed]) -> None:
    run, _ = runner
    job_id = _enqueue(run, WRITES, {"name": "lease"})
    with run.database.engine.begin() as conn:
        claimed = leases.claim(conn, job_id, run.worker, 1)
    assert claimed is not None
    run._running[claimed.id] = claimed  # as run() does while the body runs
    before = _job(run, job_id).lease_until
    assert run.renew_leases() == 1
    after = _job(run, job_id).lease_until
    assert before is not None
    assert after is not None
    assert after > before
