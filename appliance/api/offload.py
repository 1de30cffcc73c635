"""Where the API's blocking work runs: a bounded set of threads behind an admission queue that sheds load.

Every piece of blocking work a request does (its database transaction, a password hash, a call on a
synchronous client) runs here as ONE call, start to end: a route's transaction is opened, used, committed
and closed inside a single call (appliance.api.routing), so a thread that holds a database connection or a
lock never waits for another thread. That rule is what keeps a burst from freezing the process: had a
request held its connection (and, through it, a tenant's locks) while it queued for a second thread, every
thread could end up waiting on a connection held by a request that waits for a thread, as in a deadlock.

The threads are as many as the database pool can serve at once (`api.threads`), so a call never waits for
a pooled connection that no running call will give back. Calls beyond them wait in a bounded queue, and
load beyond capacity is shed with 503 + Retry-After rather than queued without limit:

* a call that finds ``queue_limit`` calls already waiting is refused at once;
* a call never waits longer than ``queue_timeout``;
* while the queue is congested (it has not been empty for ``congestion_interval``), the queue is served
  newest first, and a call that has already waited ``queue_target`` is refused as soon as a thread frees
  up rather than served late (adaptive LIFO with CoDel, as large RPC servers shed load): under a burst the
  requests that are served are served quickly, the rest learn at once to come back, and when the burst
  ends the newest requests, not a backlog of stale ones, are served first, so latency is back to normal
  within about ``queue_target``.

`stalled` tells a wedged process from a busy one (calls waiting and none finishing for a while), which
`/health/live` reports so that the supervisor restarts what cannot recover.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(eq=False)
class _Waiter:
    since: float
    admitted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Offloader:
    """Runs blocking calls on at most ``threads`` threads; see the module's docstring for the queue."""

    def __init__(
        self,
        threads: int,
        *,
        queue_limit: int,
        queue_timeout: float,
        queue_target: float = 0.2,
        congestion_interval: float = 0.5,
        retry_after: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threads < 1:
            raise ValueError("an offloader needs at least one thread")
        self.threads = threads
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self.queue_target = queue_target
        self.congestion_interval = congestion_interval
        self.retry_after = retry_after
        self._clock = clock
        self._free = threads
        self._waiters: deque[_Waiter] = deque()
        self._empty_since = clock()
        # The thread hand-off's own limiter: never the bottleneck (admission holds the count), but not
        # anyio's default one, which other code shares.
        self._threads = anyio.CapacityLimiter(threads)
        self.running = 0
        self.completed = 0
        self._progress_at = clock()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def overloaded(self, in_progress: int) -> bool:
        """Whether a new request would most likely be refused, given the ``in_progress`` requests of the
        process (those past the door, waiting here, running, or on their way here): every thread is taken
        and the queue is full, or the queue is congested and the requests in progress are more than the
        threads can serve within a round or two.

        The request middleware then refuses the request at the door, before the event loop spends on it
        what a request costs before it reaches the queue: under a burst the loop would otherwise be
        saturated by requests refused in the end, and connections would wait in the kernel's queues,
        where no bound of ours applies."""
        if self._free > 0:
            return False
        if len(self._waiters) >= self.queue_limit:
            return True
        congested = self._clock() - self._empty_since > self.congestion_interval
        return congested and in_progress > 2 * self.threads

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args, **kwargs)`` in a thread, once one is free; Overloaded when none is free in time."""
        await self._admit()
        self.running += 1
        try:
            # Not abandoned on cancellation (a client that went away): the call finishes its transaction.
            return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs), limiter=self._threads)
        finally:
            self.running -= 1
            self.completed += 1
            self._progress_at = self._clock()
            self._free += 1
            self._dispatch()

    async def _admit(self) -> None:
        now = self._clock()
        if not (self._waiters or self.running):
            self._progress_at = now  # idle until now: the stall clock starts with this call
        if self._free > 0 and not self._waiters:
            self._free -= 1
            self._empty_since = now
            return
        if len(self._waiters) >= self.queue_limit:
            raise self._shed("queue_full", f"{len(self._waiters)} requests are waiting")
        waiter = _Waiter(now)
        self._waiters.append(waiter)
        metrics.API_WAITING.inc()
        try:
            with anyio.fail_after(self.queue_timeout):
                await asyncio.shield(waiter.admitted)
        except TimeoutError:
            if waiter.admitted.done() and waiter.admitted.exception() is None:
                return  # a thread came free just as the time ran out: take it
            self._forget(waiter)
            raise self._shed("queue_timeout", f"no thread was free within {self.queue_timeout:g} s") from None
        except BaseException:  # cancelled (the client went away): give back a thread it was given
            self._forget(waiter)
            if waiter.admitted.done() and waiter.admitted.exception() is None:
                self._free += 1
                self._dispatch()
            raise

    def _dispatch(self) -> None:
        """Hand free threads to waiters: oldest first normally; newest first while congested, refusing
        those that have already waited longer than the target."""
        now = self._clock()
        while self._free > 0 and self._waiters:
            if now - self._empty_since > self.congestion_interval:
                self._refuse_late(now)
                if not self._waiters:
                    break
                waiter = self._waiters.pop()
            else:
                waiter = self._waiters.popleft()
            metrics.API_WAITING.dec()
            if waiter.admitted.done():
                continue  # timed out or cancelled meanwhile
            self._free -= 1
            waiter.admitted.set_result(None)
        if not self._waiters:
            self._empty_since = now

    def _refuse_late(self, now: float) -> None:
        while self._waiters and now - self._waiters[0].since > self.queue_target:
            late = self._waiters.popleft()
            metrics.API_WAITING.dec()
            if not late.admitted.done():
                why = f"the queue is congested; waited {now - late.since:.1f} s"
                late.admitted.set_exception(self._shed("queue_target", why))

    def _forget(self, waiter: _Waiter) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return  # already taken off by _dispatch
        metrics.API_WAITING.dec()

    def _shed(self, reason: str, why: str) -> Overloaded:
        metrics.API_SHED.labels(reason).inc()
        return Overloaded(
            f"the appliance is busy ({why}); retry in {self.retry_after} s",
            retry_after=self.retry_after,
            details={"waiting": len(self._waiters)},
        )

    def stalled(self, after: float) -> float | None:
        """Seconds since a call last finished, when calls are waiting or running and none has finished for
        more than ``after`` seconds (every thread is stuck); None while the offloader moves or is idle."""
        if not (self._waiters or self.running):
            return None
        quiet = self._clock() - self._progress_at
        return quiet if quiet > after else None
