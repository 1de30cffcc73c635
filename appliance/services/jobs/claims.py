"""The durable jobs' hot path: claim a job in one autocommitted statement, and record successes in batches.

On PostgreSQL every thread that claims jobs keeps a driver connection of its own (outside the pool, in
autocommit mode: appliance.services.common.driver_connection) and runs the claim as a prepared statement: one
round trip, and about a third of the CPU of a pooled SQLAlchemy transaction (tests/bench/RESULTS.md). Under
row-level security a worker cannot see a job before it knows its tenant, so the claim and the batch of
successes are calls of the owner's functions ``jobs_claim`` and ``jobs_succeed`` (migration 0009), which run
the statements of appliance.services.jobs.leases (`_CLAIM`) and `_SUCCEED_MANY` below, still one round trip
each.

Successes of bodies that share no transaction with them (plain and async handlers) are written by one
thread, as many as have finished since its last write in one statement (group commit): under load a job's
success costs a small share of a round trip; when idle, each is written at once. A success not yet
written when the process dies is lost like one whose worker died a moment earlier: its lease runs out and
the job runs again (jobs run at least once). Stopping writes what is waiting first.

On SQLite, whose writers queue for one lock anyway, each is a short Core transaction, as before.
What a claim and a success mean is unchanged (appliance.services.jobs.leases.claim, .succeed): the claim
commits before the body runs, so a worker that dies leaves a RUNNING row whose lease runs out.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.db.base import utcnow
from appliance.db.session import Database
from appliance.services.common.driver_connection import KeptConnections
from appliance.services.jobs import leases

log = logging.getLogger(__name__)


APPLICATION_NAME = "forge-appliance jobs"  # these connections, in pg_stat_activity
BATCH = 500  # successes per statement at most
GATHER_S = 0.005  # how long a write waits for more successes to join it
#: The claim (appliance.services.jobs.leases `_CLAIM`, run by the owner's function: see the module).
CLAIM_SQL = (
    "SELECT tenant_id, kind, payload, attempts, max_attempts "
    "FROM jobs_claim(%(job_id)s, %(due)s, %(lease_until)s, %(worker)s::text, %(now)s)"
)
#: One statement for a batch of successes: `_SUCCEED` (appliance.services.jobs.leases) over arrays, its
#: checks under IS TRUE for the reason given at appliance.services.jobs.leases.by_key (the body of the
#: owner's function ``jobs_succeed``: ``UPDATE jobs SET state = 'succeeded', ... FROM unnest(ids, attempts,
#: results, finished) AS done WHERE jobs.id = done.id AND (jobs.state = 'running' AND jobs.attempts =
#: done.attempt) IS TRUE RETURNING jobs.id``).
_SUCCEED_MANY = (
    "SELECT jobs_succeed(%(ids)s::uuid[], %(attempts)s::integer[], %(results)s::text[], "
    "%(finished)s::timestamptz[])"
)

Done = Callable[[bool], None]
"""Told whether the success was written for this attempt (False: the job's lease ran out before it)."""


@dataclass(frozen=True)
class _Success:
    job: leases.Claimed
    result: str  # as JSON
    finished_at: dt.datetime
    done: Done


class Claims:
    """Claims and successes for one worker process; safe to call from any thread."""

    def __init__(self, database: Database):
        self.database = database
        self._driver = database.backend == "postgresql"
        self._connections = KeptConnections(database.engine, APPLICATION_NAME)
        self._waiting: list[_Success] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._writer: threading.Thread | None = None

    # ----------------------------------------------------------------- the two statements

    def claim(
        self, job_id: uuid.UUID, worker: str, lease: float, now: dt.datetime | None = None
    ) -> leases.Claimed | None:
        """QUEUED -> RUNNING, committed; None if the job is not queued and due
        (appliance.services.jobs.leases)."""
        if not self._driver:
            with self.database.engine.begin() as conn:
                return leases.claim(conn, job_id, worker, lease, now)
        moment = now or utcnow()
        params = {
            "job_id": job_id,
            "due": moment + dt.timedelta(seconds=1),
            "lease_until": moment + dt.timedelta(seconds=lease),
            "worker": worker,
            "now": moment,
        }
        row = self._connections.execute(CLAIM_SQL, params).fetchone()
        if row is None:
            return None
        tenant_id, kind, payload, attempts, max_attempts = row
        return leases.Claimed(job_id, tenant_id, kind, payload, attempts, max_attempts)

    @property
    def blocking(self) -> bool:
        """Whether succeed_soon writes before it returns (SQLite) rather than hands over (PostgreSQL)."""
        return not self._driver

    def succeed_soon(self, job: leases.Claimed, result: Any, done: Done) -> None:
        """Record the success of a body that shares no transaction with it; ``done`` is called (on the
        writer's thread) once it is written. A result that is not JSON raises here, in the caller. On
        SQLite it is written before this returns (``blocking``)."""
        encoded = json.dumps(result)
        if not self._driver:
            with self.database.engine.begin() as conn:
                held = leases.succeed(conn, job, result)
            done(held)
            return
        success = _Success(job, encoded, utcnow(), done)
        with self._wake:
            stopping = self._stopping
            if not stopping:
                self._waiting.append(success)
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="job-successes", daemon=True
                    )
                    self._writer.start()
                self._wake.notify()
        if stopping:  # the writer has gone: write it here
            done(job.id in self._write([success]))

    def _write_loop(self) -> None:
        pause = 0.0
        while True:
            with self._wake:
                while not self._waiting and not self._stopping:
                    self._wake.wait()
                if not self._waiting:
                    return  # stopping, and nothing left
                gather = len(self._waiting) < BATCH and not self._stopping
            if gather:
                time.sleep(GATHER_S)  # let the successes finishing now join this write
            with self._wake:
                batch = self._waiting[:BATCH]
                del self._waiting[:BATCH]
            try:
                written = self._write(batch)
            except Exception as exc:
                # The database is down: keep them, try again with a growing pause (the jobs' leases are
                # minutes long; one that runs out hands the job to another worker, as for a dead one).
                with self._wake:
                    self._waiting[:0] = batch
                    stopping = self._stopping
                pause = min(5.0, pause * 2 or 0.2)
                log.warning("could not record job successes", extra={"jobs": len(batch), "error": str(exc)})
                if stopping:
                    return
                time.sleep(pause)
                continue
            pause = 0.0
            for success in batch:
                try:
                    success.done(success.job.id in written)
                except Exception:
                    log.exception("a job's completion failed", extra={"job": str(success.job.id)})

    def _write(self, batch: list[_Success]) -> set[uuid.UUID]:
        params = {
            "ids": [s.job.id for s in batch],
            "attempts": [s.job.attempt for s in batch],
            "results": [s.result for s in batch],
            "finished": [s.finished_at for s in batch],
        }
        return {row[0] for row in self._connections.execute(_SUCCEED_MANY, params).fetchall()}

    def close(self, timeout: float = 10.0) -> None:
        """Write the successes still waiting (up to ``timeout`` seconds), then close every thread's
        connection: the process is stopping."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
            writer = self._writer
        if writer is not None:
            writer.join(timeout)
        self._connections.close()
