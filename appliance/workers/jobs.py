"""The durable job runner: one Huey task runs any job by id; handlers are registered per kind.

A Huey message carries only a job's id. The runner claims the row (QUEUED -> RUNNING, with a lease), runs
the kind's handler, and records the outcome (appliance.services.jobs.leases). Huey's own retries are off for
this task: retries, backoff and the dead state are the job's. While a job runs, the process's lease keeper
renews its lease; a process that dies stops renewing, and the reaper hands its jobs to another worker.

Three kinds of handler:
- ``@handler(kind)``: ``def body(ctx, session, payload)``, run on a Huey thread inside a session scoped to
  the job's tenant; the job's success is written in that same transaction, so a body whose effect is in
  the database takes effect exactly once.
- ``@plain_handler(kind)``: ``def body(ctx, payload)``, run on a Huey thread with no session, for a body
  that touches no database (its effect is elsewhere, or none); its success is group-committed with
  others' by one writer thread (appliance.services.jobs.claims).
- ``@async_handler(kind, concurrency)``: ``async def body(ctx, payload)``, run on the process's asyncio
  loop (appliance.workers.job_loop), so a body that waits on the network (a webhook receiver that hangs)
  holds no Huey thread; at most ``concurrency`` of a kind run at once per process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from appliance.config import Settings
from appliance.db import tenancy
from appliance.db.session import Database
from appliance.services.jobs import durable as jobs
from appliance.services.jobs import leases
from appliance.services.jobs.claims import Claims
from appliance.workers import job_metrics
from appliance.workers.queue import UnrevokedTask, task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a handler knows of the job it runs and of the process."""

    job_id: uuid.UUID
    tenant_id: uuid.UUID | None
    attempt: int
    max_attempts: int
    settings: Settings
    database: Database
    kind: str = ""
    _reported: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def progress(self, step: str, done: int, total: int) -> None:
        """Record how far the job got (read by the jobs API and the console), at most once a second per
        step and always at a step's end; in a short transaction of its own, so a failure later keeps it."""
        now = time.monotonic()
        last = self._reported.get(step)
        if last is not None and now - last < 1.0 and done < total:
            return
        self._reported[step] = now
        claimed = leases.Claimed(self.job_id, self.tenant_id, self.kind, {}, self.attempt, self.max_attempts)
        with self.database.engine.begin() as conn:
            leases.report_progress(conn, claimed, step, done, total)


SyncBody = Callable[[JobContext, Session, dict[str, Any]], Any]
PlainBody = Callable[[JobContext, dict[str, Any]], Any]
AsyncBody = Callable[[JobContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Handler:
    kind: jobs.Kind
    body: SyncBody | None = None
    plain_body: PlainBody | None = None
    async_body: AsyncBody | None = None
    concurrency: int = 1


HANDLERS: dict[str, Handler] = {}


def handler(kind: jobs.Kind) -> Callable[[SyncBody], SyncBody]:
    def register(body: SyncBody) -> SyncBody:
        _register(Handler(kind, body=body))
        return body

    return register


def plain_handler(kind: jobs.Kind) -> Callable[[PlainBody], PlainBody]:
    def register(body: PlainBody) -> PlainBody:
        _register(Handler(kind, plain_body=body))
        return body

    return register


def async_handler(kind: jobs.Kind, concurrency: int = 50) -> Callable[[AsyncBody], AsyncBody]:
    def register(body: AsyncBody) -> AsyncBody:
        _register(Handler(kind, async_body=body, concurrency=concurrency))
        return body

    return register


def _register(entry: Handler) -> None:
    if entry.kind.name in HANDLERS:
        raise ValueError(f"job kind {entry.kind.name!r} has two handlers")
    HANDLERS[entry.kind.name] = entry


# --------------------------------------------------------------------------- the Huey task


@task(name="jobs.run", retries=0, task_base=UnrevokedTask)
def run_job(job_id: str) -> None:
    """Run the durable job ``job_id`` (a no-op unless it is queued and due). Cancelling a job is a change
    of its row (appliance.services.jobs.manage.cancel), never a Huey revocation."""
    current().run(uuid.UUID(job_id))


_runner: Runner | None = None


def install(runner: Runner | None) -> None:
    global _runner  # noqa: PLW0603  (one per worker process, set at its start)
    _runner = runner


def current() -> Runner:
    if _runner is None:
        raise RuntimeError("no job runner: jobs run inside `appliance worker`")
    return _runner


class Runner:
    """Claims, runs and records the jobs of one worker process; keeps their leases alive."""

    def __init__(self, settings: Settings, database: Database, worker: str, push: jobs.Pusher):
        self.settings = settings
        self.database = database
        self.worker = worker
        self.push = push
        self.lease = settings.jobs.lease_seconds
        self.claims = Claims(database)
        self._running: dict[uuid.UUID, leases.Claimed] = {}
        self._lock = threading.Lock()
        self._loop: Any = None  # appliance.workers.job_loop.JobLoop, started at the first async job

    # ----------------------------------------------------------------- one job

    def run(self, job_id: uuid.UUID) -> None:
        claimed = self.claims.claim(job_id, self.worker, self.lease)
        if claimed is None:
            return
        entry = HANDLERS.get(claimed.kind)
        with self._lock:
            self._running[claimed.id] = claimed
        if entry is None:
            self.finish_failed(
                claimed, jobs.PermanentFailure(f"no handler for jobs of kind {claimed.kind!r}"), 0.0
            )
        elif entry.async_body is not None:
            self._async_loop().submit(self, entry, claimed)
        elif entry.plain_body is not None:
            self._run_plain(entry.plain_body, claimed)
        else:
            self._run_sync(entry, claimed)

    def context(self, claimed: leases.Claimed) -> JobContext:
        return JobContext(
            claimed.id,
            claimed.tenant_id,
            claimed.attempt,
            claimed.max_attempts,
            self.settings,
            self.database,
            claimed.kind,
        )

    def _run_sync(self, entry: Handler, claimed: leases.Claimed) -> None:
        assert entry.body is not None
        started = time.monotonic()
        try:
            with self.database.session_scope() as session:
                if claimed.tenant_id is not None:
                    tenancy.set_tenant(session, claimed.tenant_id)
                result = entry.body(self.context(claimed), session, claimed.payload)
                # The success goes in the body's own transaction, so that its effect and the job's end
                # commit together; a body that did not touch the database has none to share.
                in_transaction = session.in_transaction()
                if in_transaction:
                    held = leases.succeed(session, claimed, result)
            seconds = time.monotonic() - started
            if not in_transaction:
                self.claims.succeed_soon(claimed, result, self._finisher(claimed, seconds))
                return
        except Exception as exc:
            self.finish_failed(claimed, exc, time.monotonic() - started)
            return
        self.finish_succeeded(claimed, held, seconds)

    def _run_plain(self, body: PlainBody, claimed: leases.Claimed) -> None:
        started = time.monotonic()
        try:
            result = body(self.context(claimed), claimed.payload)
            self.claims.succeed_soon(claimed, result, self._finisher(claimed, time.monotonic() - started))
        except Exception as exc:
            self.finish_failed(claimed, exc, time.monotonic() - started)

    def _finisher(self, claimed: leases.Claimed, seconds: float) -> Callable[[bool], None]:
        return lambda held: self.finish_succeeded(claimed, held, seconds)

    def finish_succeeded(self, claimed: leases.Claimed, held: bool, seconds: float) -> None:
        self._forget(claimed)
        job_metrics.observe(claimed.kind, "succeeded", seconds)
        if not held:
            log.warning("a job finished after its lease ran out", extra={"job": str(claimed.id)})

    def finish_failed(self, claimed: leases.Claimed, exc: BaseException, seconds: float) -> None:
        """Record a failed attempt: retry on the kind's schedule (or as the body asked), or dead."""
        kind = jobs.KINDS.get(claimed.kind) or jobs.Kind(claimed.kind)
        if isinstance(exc, jobs.PermanentFailure):
            error, retry_in = exc.reason, None
        elif isinstance(exc, jobs.RetryLater):
            error = exc.reason
            retry_in = exc.delay if exc.delay is not None else kind.delay_after(claimed.attempt)
        else:
            error = f"{type(exc).__name__}: {exc}"
            retry_in = kind.delay_after(claimed.attempt)
            log.warning(
                "a job attempt failed", extra={"job": str(claimed.id), "kind": claimed.kind, "error": error}
            )
        try:
            with self.database.engine.begin() as conn:
                run_at = leases.fail(conn, claimed, error, retry_in=retry_in)
        except Exception:
            # The lease runs out and the reaper hands the job on: the failure is not lost, only delayed.
            log.exception("could not record a failed job attempt", extra={"job": str(claimed.id)})
            self._forget(claimed)
            return
        self._forget(claimed)
        outcome = "retry" if run_at is not None else "dead"
        job_metrics.observe(claimed.kind, outcome, seconds)
        if run_at is not None:
            self.push([(claimed.id, run_at)])

    def _forget(self, claimed: leases.Claimed) -> None:
        with self._lock:
            self._running.pop(claimed.id, None)

    def _async_loop(self) -> Any:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    from appliance.workers.job_loop import JobLoop

                    self._loop = JobLoop()
        return self._loop

    # ----------------------------------------------------------------- leases

    def renew_leases(self) -> int:
        with self._lock:
            running = list(self._running.values())
        if not running:
            return 0
        with self.database.engine.begin() as conn:
            return leases.renew(conn, running, self.lease)

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the async jobs in flight finish (up to ``timeout``); the others' leases run out."""
        if self._loop is not None:
            self._loop.stop(timeout)
        self.claims.close()


def push(items: Sequence[tuple[uuid.UUID, dt.datetime | None]]) -> None:
    """The pusher (appliance.services.jobs.durable.install_pusher) of a process whose Huey instance is
    configured: a job due now goes to the queue, one due later to Huey's schedule."""
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    for job_id, run_at in items:
        if run_at is not None and run_at > soon:
            run_job.schedule((str(job_id),), eta=run_at)
        else:
            run_job(str(job_id))
