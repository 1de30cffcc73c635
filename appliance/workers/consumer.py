"""Run the Huey consumer for `appliance worker`, with the durable jobs' runner and background duties."""

from __future__ import annotations

import gc
import logging
import os
from functools import partial

from appliance.config import Settings
from appliance.db.session import Database
from appliance.program_status import StatusReporter, dependency_check
from appliance.services.jobs import durable as job_service
from appliance.workers import backup_tasks as _backup_tasks  # noqa: F401  (registers its job handlers)
from appliance.workers import job_keeper, jobs, queue, runtime
from appliance.workers import tasks as _tasks  # (also registers the tasks on the instance)
from appliance.workers import tenant_tasks as _tenant_tasks  # noqa: F401  (registers its job handlers)
from appliance.workers import webhook_tasks as _webhook_tasks  # noqa: F401  (registers its job handler)
from appliance.workers.monitor import Monitor

log = logging.getLogger(__name__)


def run(settings: Settings, workers: int | None = None, periodic: bool | None = None) -> None:
    """Consume tasks until SIGINT (graceful: running tasks finish) or SIGTERM (immediate).

    Every worker process renews the leases of the jobs it runs; the periodic one (exactly one should be)
    also runs Huey's periodic tasks, the reaper of lost jobs and the application monitor (unless
    ``monitoring.enabled`` is off)."""
    instance = queue.configure(settings)
    queue.ping(instance)
    database = Database(settings)
    runtime.install(runtime.WorkerRuntime(settings=settings, database=database))
    job_service.install_pusher(jobs.push)
    runner = jobs.Runner(settings, database, _tasks.worker_name(), jobs.push)
    jobs.install(runner)
    is_periodic = settings.queue.periodic if periodic is None else periodic
    consumer = instance.create_consumer(
        workers=workers or settings.queue.workers,
        worker_type="thread",
        periodic=is_periodic,
        check_worker_health=True,
        flush_locks=False,
    )
    duties = [job_keeper.lease_keeper(runner).start()]
    # Says to the supervisor whether this worker can work (database, queue), so it is not shown "running"
    # while its database refuses it (appliance/program_status.py).
    reporter = StatusReporter(
        dependency_check(settings, partial(queue.ping, instance)), os.environ.pop("NOTIFY_SOCKET", None)
    )
    reporter.start()
    monitor: Monitor | None = None
    if is_periodic:
        duties.append(job_keeper.reaper(runner).start())
        if settings.monitoring.enabled:
            monitor = _start_monitor(settings, database)
    log.info(
        "worker started", extra={"queue": settings.queue.name, "backend": type(instance.storage).__name__}
    )
    # What start-up made (modules, mappers, settings, the engine) lives as long as the process: frozen out
    # of the collector's sight, so that a full collection walks only what came since (walking it all held
    # every thread for 80-100 ms, the slowest webhook deliveries: tests/bench/RESULTS.md, issue 15).
    gc.freeze()
    try:
        consumer.run()
    finally:
        if monitor is not None:
            monitor.stop()
        runner.stop()
        for duty in duties:
            duty.stop()
        reporter.stop()


def _start_monitor(settings: Settings, database: Database) -> Monitor | None:
    """The application monitor, or None (logged) if it cannot start: the jobs run either way."""
    try:
        return Monitor(settings, database, refresh_every=settings.monitoring.refresh_seconds).start()
    except Exception:
        log.exception("the application monitor did not start; the worker runs jobs without it")
        return None
