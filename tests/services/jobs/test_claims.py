"""The jobs' hot path (appliance.services.jobs.claims) on each database: a claim commits at once, successes
are written in batches from any thread, a stale attempt's success is refused, a result that is not JSON is
refused in the caller, stopping writes what waits, a kept connection the server closed is replaced, and a
claim finds its job by key whatever the planner's statistics say."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import select, text, update

from appliance.db.session import Database
from appliance.models import Job, JobState
from appliance.services.jobs import durable as jobs
from appliance.services.jobs.claims import CLAIM_SQL, Claims
from tests.support import wait_for

KIND = jobs.KINDS.get("test.claims") or jobs.kind("test.claims", max_attempts=3)


@pytest.fixture
def claims(db: Database) -> Iterator[Claims]:
    hot = Claims(db)
    try:
        yield hot
    finally:
        hot.close()


def _enqueue(db: Database, count: int = 1) -> list[uuid.UUID]:
    with db.session_scope() as session:
        return [jobs.enqueue(session, KIND, {"n": n}, tenant_id=None).id for n in range(count)]


def _rows(db: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    with db.session_scope(write=False) as session:
        return {job.id: job for job in session.scalars(select(Job).where(Job.id.in_(ids)))}


def test_a_claim_commits_and_a_second_one_loses(db: Database, claims: Claims) -> None:
    [job_id] = _enqueue(db)
    claimed = claims.claim(job_id, "w1", 30)
    assert claimed is not None
    assert (claimed.kind, claimed.payload, claimed.attempt) == ("test.claims", {"n": 0}, 1)
    assert claims.claim(job_id, "w2", 30) is None
    row = _rows(db, [job_id])[job_id]  # read on another connection: the claim is committed
    assert (row.state, row.worker, row.attempts) == (JobState.RUNNING, "w1", 1)


def test_successes_from_many_threads_are_all_written(db: Database, claims: Claims) -> None:
    ids = _enqueue(db, 60)
    told: dict[uuid.UUID, bool] = {}
    lock = threading.Lock()

    def work(part: list[uuid.UUID]) -> None:
        for job_id in part:
            claimed = claims.claim(job_id, "w", 30)
            assert claimed is not None

            def done(held: bool, job_id: uuid.UUID = job_id) -> None:
                with lock:
                    told[job_id] = held

            claims.succeed_soon(claimed, {"echo": str(job_id)}, done)

    threads = [threading.Thread(target=work, args=(ids[n::3],)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(told) == 60, 10, what="every success told")
    assert set(told.values()) == {True}
    rows = _rows(db, ids)
    assert {row.state for row in rows.values()} == {JobState.SUCCEEDED}
    assert all(row.result == {"echo": str(row.id)} for row in rows.values())
    assert all(row.lease_until is None and row.finished_at is not None for row in rows.values())


def test_the_success_of_an_attempt_that_lost_its_lease_is_refused(db: Database, claims: Claims) -> None:
    [job_id] = _enqueue(db)
    first = claims.claim(job_id, "w1", 30)
    assert first is not None
    with db.engine.begin() as conn:  # the reaper gave the job to another worker, which claimed it
        conn.execute(update(Job).where(Job.id == job_id).values(state=JobState.QUEUED.value))
    second = claims.claim(job_id, "w2", 30)
    assert second is not None
    assert second.attempt == 2
    told: list[bool] = []
    claims.succeed_soon(first, "late", told.append)
    wait_for(lambda: told, 10, what="the late success told")
    assert told == [False]
    row = _rows(db, [job_id])[job_id]
    assert (row.state, row.result, row.worker) == (JobState.RUNNING, None, "w2")


def test_a_result_that_is_not_json_is_refused_in_the_caller(db: Database, claims: Claims) -> None:
    [job_id] = _enqueue(db)
    claimed = claims.claim(job_id, "w", 30)
    assert claimed is not None
    told: list[bool] = []
    with pytest.raises(TypeError):
        claims.succeed_soon(claimed, {"when": object()}, told.append)
    claims.close()
    assert told == []
    assert _rows(db, [job_id])[job_id].state == JobState.RUNNING


def test_stopping_writes_the_successes_that_wait(db: Database) -> None:
    ids = _enqueue(db, 20)
    hot = Claims(db)
    told: list[bool] = []
    for job_id in ids:
        claimed = hot.claim(job_id, "w", 30)
        assert claimed is not None
        hot.succeed_soon(claimed, None, told.append)
    hot.close()  # at once: most are still waiting for their write
    assert told == [True] * 20
    assert {row.state for row in _rows(db, ids).values()} == {JobState.SUCCEEDED}


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("plan_cache_mode", ["force_custom_plan", "force_generic_plan"])
def test_a_claim_finds_its_job_by_key_when_statistics_say_the_queue_is_empty(
    db: Database, plan_cache_mode: str
) -> None:
    """Statistics taken while no job was queued (a fresh install, or the queue's usual idle state) make
    ``state = 'queued'`` look rare; a claim that then walked ix_jobs_state_run_at would read the whole
    backlog to find its one job. Its plan must be the primary key's, whatever the statistics: the plan of
    the UPDATE inside the owner's function ``jobs_claim`` that the worker calls (auto_explain shows it)."""
    _enqueue(db, 200)
    with db.engine.begin() as conn:
        conn.execute(update(Job).values(state=JobState.SUCCEEDED.value))
        conn.execute(text("ANALYZE jobs"))
    backlog = _enqueue(db, 2000)
    moment = dt.datetime.now(dt.UTC)
    raw = db.engine.raw_connection()
    plans: list[str] = []
    try:
        driver = raw.driver_connection
        assert isinstance(driver, psycopg.Connection)
        driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        cursor = raw.cursor()
        for setting in (
            f"SET plan_cache_mode = {plan_cache_mode}",
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_nested_statements = on",
            "SET client_min_messages = log",
        ):
            cursor.execute(setting)
        for job_id in backlog[-6:]:  # past the custom plans a function's statement starts with
            plans.clear()
            cursor.execute(
                CLAIM_SQL,
                {"job_id": job_id, "due": moment, "lease_until": moment, "worker": "w", "now": moment},
            )
            assert cursor.fetchone() is not None
    finally:
        raw.close()
    (plan,) = [p for p in plans if "Update on jobs" in p]
    assert "pk_jobs" in plan, plan
    assert "ix_jobs_state_run_at" not in plan, plan
