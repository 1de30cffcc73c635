"""The job state machine on each database: enqueue and the push after commit, one claim wins, attempts fence
the outcome, the reaper finds lost jobs, retry and cancel."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence

import pytest

from appliance.db.session import Database
from appliance.errors import Conflict, NotFound
from appliance.models import Job, JobState
from appliance.services.jobs import durable as jobs
from appliance.services.jobs import leases, manage
from appliance.services.jobs import reaper as job_reaper

KIND = jobs.KINDS.get("test.service") or jobs.kind("test.service", max_attempts=2, delays=(10,))
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

Pushed = list[tuple[uuid.UUID, dt.datetime | None]]


@pytest.fixture
def pushed() -> Iterator[Pushed]:
    seen: Pushed = []

    def push(items: Sequence[tuple[uuid.UUID, dt.datetime | None]]) -> None:
        seen.extend(items)

    jobs.install_pusher(push)
    try:
        yield seen
    finally:
        jobs.install_pusher(None)


def _enqueue(db: Database, **kwargs: object) -> uuid.UUID:
    with db.session_scope() as session:
        return jobs.enqueue(session, KIND, {"n": 1}, tenant_id=None, now=T0, **kwargs).id  # type: ignore[arg-type]


def _state(db: Database, job_id: uuid.UUID) -> Job:
    with db.session_scope(write=False) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_job_reaches_the_queue_only_when_its_transaction_commits(db: Database, pushed: Pushed) -> None:
    with pytest.raises(RuntimeError), db.session_scope() as session:
        jobs.enqueue(session, KIND, {}, tenant_id=None)
        raise RuntimeError("the change failed")
    assert pushed == []
    job_id = _enqueue(db)
    assert pushed == [(job_id, None)]
    assert _state(db, job_id).state == JobState.QUEUED


def test_the_same_idempotency_key_gives_back_the_same_job(db: Database, pushed: Pushed) -> None:
    first = _enqueue(db, idempotency_key="order-7")
    assert _enqueue(db, idempotency_key="order-7") == first
    assert _enqueue(db, idempotency_key="order-8") != first


def test_one_claim_wins_and_attempts_fence_the_outcome(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    with db.engine.begin() as conn:
        claimed = leases.claim(conn, job_id, "w1", 30, now=T0)
        assert leases.claim(conn, job_id, "w2", 30, now=T0) is None
    assert claimed is not None
    assert claimed.attempt == 1
    # The lease runs out: the reaper hands the job on, and a second worker claims it.
    with db.engine.begin() as conn:
        reaped = job_reaper.reap(conn, requeue_after=60, keep_days=30, now=T0 + dt.timedelta(seconds=31))
    assert reaped.requeue == [job_id]
    assert reaped.expired == 1
    with db.engine.begin() as conn:
        second = leases.claim(conn, job_id, "w2", 30, now=T0 + dt.timedelta(seconds=32))
        assert second is not None
        assert second.attempt == 2
        # The first worker comes back late: its outcome no longer counts.
        assert not leases.succeed(conn, claimed, "late")
        assert leases.succeed(conn, second, {"ok": True})
    job = _state(db, job_id)
    assert (job.state, job.result, job.attempts) == (JobState.SUCCEEDED, {"ok": True}, 2)


def test_a_failed_attempt_retries_then_the_last_one_is_dead(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    with db.engine.begin() as conn:
        first = leases.claim(conn, job_id, "w", 30, now=T0)
        assert first is not None
        again = leases.fail(conn, first, "boom", retry_in=10, now=T0)
    assert again == T0 + dt.timedelta(seconds=10)
    with db.engine.begin() as conn:
        assert leases.claim(conn, job_id, "w", 30, now=T0 + dt.timedelta(seconds=2)) is None  # not due yet
        second = leases.claim(conn, job_id, "w", 30, now=T0 + dt.timedelta(seconds=10))
        assert second is not None
        assert leases.fail(conn, second, "boom again", retry_in=10, now=T0) is None  # no attempt left
    job = _state(db, job_id)
    assert (job.state, job.last_error, job.attempts) == (JobState.DEAD, "boom again", 2)


def test_the_reaper_hands_on_a_lost_push_once_per_interval(db: Database) -> None:
    job_id = _enqueue(db)  # no pusher in this process: the hand-over is lost
    with db.engine.begin() as conn:
        early = job_reaper.reap(conn, requeue_after=60, keep_days=30, now=T0 + dt.timedelta(seconds=30))
        late = job_reaper.reap(conn, requeue_after=60, keep_days=30, now=T0 + dt.timedelta(seconds=61))
        right_after = job_reaper.reap(conn, requeue_after=60, keep_days=30, now=T0 + dt.timedelta(seconds=62))
    assert (early.requeue, late.requeue, right_after.requeue) == ([], [job_id], [])
    assert late.lost_pushes == 1


def test_a_backlog_still_in_the_queue_is_not_handed_again(db: Database) -> None:
    first, second, third = _enqueue(db), _enqueue(db), _enqueue(db)
    later = T0 + dt.timedelta(seconds=61)
    with db.engine.begin() as conn:
        waiting = job_reaper.reap(conn, requeue_after=60, keep_days=30, pending=3, now=later)
        one_lost = job_reaper.reap(conn, requeue_after=60, keep_days=30, pending=2, now=later)
    assert waiting.requeue == []  # three stale jobs, three messages waiting: a backlog
    assert len(one_lost.requeue) == 1
    assert one_lost.requeue[0] in {first, second, third}
    with db.engine.begin() as conn:
        again = job_reaper.reap(conn, requeue_after=60, keep_days=30, pending=0, now=later)
    assert sorted(again.requeue) == sorted({first, second, third} - set(one_lost.requeue))


def test_a_job_whose_worker_dies_on_its_last_attempt_is_dead(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    for attempt in range(2):
        with db.engine.begin() as conn:
            moment = T0 + dt.timedelta(minutes=attempt)
            assert leases.claim(conn, job_id, "w", 5, now=moment) is not None
            job_reaper.reap(conn, requeue_after=60, keep_days=30, now=moment + dt.timedelta(seconds=6))
    job = _state(db, job_id)
    assert job.state == JobState.DEAD
    assert "last attempt" in (job.last_error or "")


def test_retry_and_cancel_follow_the_state_machine(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    with db.session_scope() as session:
        job = manage.get(session, job_id, None)
        with pytest.raises(Conflict) as refused:
            manage.retry(session, job)
        assert refused.value.code == "JOB_NOT_RETRYABLE"
        manage.cancel(session, job)
    assert _state(db, job_id).state == JobState.CANCELLED
    pushed.clear()
    with db.session_scope() as session:
        job = manage.get(session, job_id, None)
        with pytest.raises(Conflict):
            manage.cancel(session, job)
        manage.retry(session, job)
    assert _state(db, job_id).state == JobState.QUEUED
    assert pushed == [(job_id, None)]


def test_another_tenants_job_is_not_found(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    with db.session_scope() as session, pytest.raises(NotFound) as missing:
        manage.get(session, job_id, uuid.uuid4())
    assert missing.value.code == "JOB_NOT_FOUND"


def test_the_reaper_removes_finished_jobs_after_the_keep_period(db: Database, pushed: Pushed) -> None:
    job_id = _enqueue(db)
    with db.engine.begin() as conn:
        claimed = leases.claim(conn, job_id, "w", 30, now=T0)
        assert claimed is not None
        leases.succeed(conn, claimed, None, now=T0)
        kept = job_reaper.reap(conn, requeue_after=60, keep_days=1, now=T0 + dt.timedelta(hours=23))
        gone = job_reaper.reap(conn, requeue_after=60, keep_days=1, now=T0 + dt.timedelta(hours=25))
    assert (kept.removed, gone.removed) == (0, 1)
