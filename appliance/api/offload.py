"""Where the API's blocking work runs: a bounded set of threads behind an admission queue that sheds load.

Every piece of blocking work a request does (its database transaction, a password hash, a call on a
synchronous client) runs here as ONE call, start to end: a route's transaction is opened, used, committed
and closed inside a single call (appliance.api.routing), so a thread that holds a database connection or a
lock never waits for another thread. That rule is what keeps a burst from freezing the process: had a
request held its connection (and, through it, a tenant's locks) while it queued for a second thread, every
thread could end up waiting on a connection held by a request that waits for a thread, as in a deadlock.

The threads are as many as the database pool can serve at once (`api.threads`), so a call never waits for
a pooled connection that no running call will give back. Requests beyond them wait in a bounded queue:
when ``queue_limit`` are already waiting, or after ``queue_timeout`` seconds of waiting, the request is
answered 503 with Retry-After at once, rather than queued without limit (load beyond capacity is shed, and
the requests the process accepted are answered within their bounds).

`stalled` tells a wedged process from a busy one (calls waiting and none finishing for a while), which
`/health/live` reports so that the supervisor restarts what cannot recover.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from appliance.api import metrics
from appliance.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")


class Overloaded(Unavailable):
    """The API process has more work waiting than it can start within its bounds."""

    code = "OVERLOADED"


class Offloader:
    """Runs blocking calls on at most ``threads`` threads, with at most ``queue_limit`` calls waiting for
    one, each for at most ``queue_timeout`` seconds."""

    def __init__(
        self,
        threads: int,
        *,
        queue_limit: int,
        queue_timeout: float,
        retry_after: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threads < 1:
            raise ValueError("an offloader needs at least one thread")
        self.threads = threads
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.retry_after = retry_after
        self._clock = clock
        self._admission = anyio.CapacityLimiter(threads)
        # The thread hand-off's own limiter: never the bottleneck (admission holds the count), but not
        # anyio's default one, which other code shares.
        self._threads = anyio.CapacityLimiter(threads)
        self.waiting = 0
        self.running = 0
        self.completed = 0
        self._progress_at = clock()

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args, **kwargs)`` in a thread, once a thread is free; Overloaded when none is in time."""
        if self._admission.available_tokens < 1 and self.waiting >= self.queue_limit:
            metrics.API_SHED.labels("queue_full").inc()
            raise Overloaded(
                f"the appliance is busy ({self.waiting} requests waiting); retry in {self.retry_after} s",
                retry_after=self.retry_after,
                details={"waiting": self.waiting},
            )
        if not (self.waiting or self.running):
            self._progress_at = self._clock()  # idle until now: the stall clock starts with this call
        self.waiting += 1
        metrics.API_WAITING.inc()
        try:
            with anyio.fail_after(self.queue_timeout):
                await self._admission.acquire()
        except TimeoutError:
            metrics.API_SHED.labels("queue_timeout").inc()
            raise Overloaded(
                f"the appliance is busy: no thread was free within {self.queue_timeout:g} s; "
                f"retry in {self.retry_after} s",
                retry_after=self.retry_after,
            ) from None
        finally:
            self.waiting -= 1
            metrics.API_WAITING.dec()
        self.running += 1
        try:
            # Not abandoned on cancellation (a client that went away): the call finishes its transaction.
            return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs), limiter=self._threads)
        finally:
            self.running -= 1
            self.completed += 1
            self._progress_at = self._clock()
            self._admission.release()

    def stalled(self, after: float) -> float | None:
        """Seconds since a call last finished, when calls are waiting or running and none has finished for
        more than ``after`` seconds (every thread is stuck); None while the offloader moves or is idle."""
        if not (self.waiting or self.running):
            return None
        quiet = self._clock() - self._progress_at
        return quiet if quiet > after else None
