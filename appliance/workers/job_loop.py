"""The asyncio loop of a worker process, on a thread of its own, where async job bodies run.

Network-bound bodies (webhook deliveries) wait here rather than on Huey's threads, so that a receiver
that hangs until its timeout holds a slot of its kind's semaphore, not a worker.

The loop is uvloop's where it is installed (it comes with uvicorn[standard] on Linux): the deliveries in
flight make this thread the worker's busiest, and uvloop's event loop and sockets cost less CPU per HTTP
request than asyncio's own (tests/bench/RESULTS.md, issue 15).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from appliance.services.jobs.claims import Claims
    from appliance.services.jobs.durable import Kind
    from appliance.services.jobs.leases import Claimed


# Protocols of what the loop uses of appliance.workers.jobs, which starts the loop: that module imports this
# one, so this one does not import it back.
class Handler(Protocol):
    """A registered async handler (appliance.workers.jobs.Handler)."""

    @property
    def kind(self) -> Kind: ...

    @property
    def async_body(self) -> Callable[[Any, dict[str, Any]], Awaitable[Any]] | None: ...

    @property
    def concurrency(self) -> int: ...


class Runner(Protocol):
    """The job runner (appliance.workers.jobs.Runner): a job's context, its claims, how an attempt ends."""

    @property
    def claims(self) -> Claims: ...

    def context(self, claimed: Claimed) -> Any: ...

    def finish_succeeded(self, claimed: Claimed, held: bool, seconds: float) -> None: ...

    def finish_failed(self, claimed: Claimed, exc: BaseException, seconds: float) -> None: ...


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop, or asyncio's where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover (installed with uvicorn[standard] on Linux)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class JobLoop:
    def __init__(self) -> None:
        self.loop = new_event_loop()
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._futures: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.loop.run_forever, name="job-loop", daemon=True)
        self._thread.start()

    def submit(self, runner: Runner, entry: Handler, claimed: Claimed) -> None:
        future = asyncio.run_coroutine_threadsafe(self._run(runner, entry, claimed), self.loop)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    async def _run(self, runner: Runner, entry: Handler, claimed: Claimed) -> None:
        assert entry.async_body is not None
        semaphore = self._semaphores.get(entry.kind.name)
        if semaphore is None:
            semaphore = self._semaphores[entry.kind.name] = asyncio.Semaphore(entry.concurrency)
        async with semaphore:
            started = time.monotonic()
            try:
                result = await entry.async_body(runner.context(claimed), claimed.payload)

                seconds = time.monotonic() - started

                def done(held: bool) -> None:
                    runner.finish_succeeded(claimed, held, seconds)

                if runner.claims.blocking:
                    await asyncio.to_thread(runner.claims.succeed_soon, claimed, result, done)
                else:
                    runner.claims.succeed_soon(claimed, result, done)
            except Exception as exc:
                await asyncio.to_thread(runner.finish_failed, claimed, exc, time.monotonic() - started)

    def in_flight(self) -> int:
        with self._lock:
            return len(self._futures)

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=1)
        if not self._thread.is_alive():
            self.loop.close()
