"""Run the Huey consumer for `appliance worker`."""

from __future__ import annotations

import logging

from appliance.config import Settings
from appliance.db.session import Database
from appliance.workers import queue, runtime
from appliance.workers import tasks as _tasks  # noqa: F401  (registers the tasks on the instance)

log = logging.getLogger(__name__)


def run(settings: Settings, workers: int | None = None, periodic: bool | None = None) -> None:
    """Consume tasks until SIGINT (graceful: running tasks finish) or SIGTERM (immediate)."""
    instance = queue.configure(settings)
    queue.ping(instance)
    runtime.install(runtime.WorkerRuntime(settings=settings, database=Database(settings)))
    consumer = instance.create_consumer(
        workers=workers or settings.queue.workers,
        worker_type="thread",
        periodic=settings.queue.periodic if periodic is None else periodic,
        check_worker_health=True,
        flush_locks=False,
    )
    log.info(
        "worker started", extra={"queue": settings.queue.name, "backend": type(instance.storage).__name__}
    )
    consumer.run()
