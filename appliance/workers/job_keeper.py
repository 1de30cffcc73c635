"""The worker's background duties for durable jobs: renew the leases of the jobs it runs (every process),
and reap lost jobs (the periodic worker only). One daemon thread each, stopped with the consumer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from appliance.services.jobs import reaper as job_reaper
from appliance.workers import job_metrics, queue
from appliance.workers.jobs import Runner

log = logging.getLogger(__name__)


class Every:
    """Run ``duty`` every ``interval`` seconds on a daemon thread until stopped; a failing run is logged
    and the next one comes on time (a database that is down must not end the thread)."""

    def __init__(self, name: str, interval: float, duty: Callable[[], object]):
        self.interval, self.duty = interval, duty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Every:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.duty()
            except Exception as exc:
                log.warning("a background duty failed", extra={"duty": self._thread.name, "error": str(exc)})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)


def lease_keeper(runner: Runner) -> Every:
    return Every("job-leases", max(0.2, runner.lease / 3), runner.renew_leases)


def reaper(runner: Runner) -> Every:
    settings = runner.settings.jobs

    def reap_once() -> None:
        try:  # read first: a message taken meanwhile only delays a hand-over, never doubles one
            pending = queue.depth(queue.huey)
        except Exception:  # the queue is down: the pushes below fail too, and are tried again later
            pending = 0
        with runner.database.engine.begin() as conn:
            reaped = job_reaper.reap(
                conn, requeue_after=settings.requeue_after, keep_days=settings.keep_days, pending=pending
            )
        if reaped.requeue:
            runner.push([(job_id, None) for job_id in reaped.requeue])
        if reaped.expired or reaped.lost_pushes or reaped.dead:
            job_metrics.RECOVERED.labels("lease_expired").inc(reaped.expired)
            job_metrics.RECOVERED.labels("lost_push").inc(reaped.lost_pushes)
            log.info(
                "reaped jobs",
                extra={"expired": reaped.expired, "lost_pushes": reaped.lost_pushes, "dead": reaped.dead},
            )

    return Every("job-reaper", settings.reap_interval, reap_once)
