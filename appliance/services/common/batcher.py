"""Calls made on an event loop, grouped into batches that run on one thread of their own (group commit).

A coroutine awaits ``batcher.submit(item)``. When no batch is running, the item starts one at once, alone
(an idle system adds no wait); while a batch runs, the items submitted meanwhile gather and make the next
one. Under load a batch holds as many items as arrived during the one before it (up to ``limit``), so one
transaction carries many; each caller gets its own item's result, or its exception.

The batches run one after another on the batcher's thread (so a driver connection that thread keeps serves
every batch), and never on the loop: a slow database holds up the callers that wait on it, not the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741  (an item)
R = TypeVar("R")

Run = Callable[[Sequence[I]], Sequence[R | BaseException]]
"""Runs one batch, on the batcher's thread: a result (or the exception raised for it) per item, in order.
An exception it raises itself is every item's."""


class Batcher(Generic[I, R]):
    """Submit from coroutines of one event loop at a time; ``close()`` when done."""

    def __init__(self, run: Run[I, R], *, name: str, limit: int = 500):
        self._run = run
        self._limit = limit
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        self._waiting: list[tuple[I, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                items = [item for item, _ in batch]
                try:
                    results = await loop.run_in_executor(self._executor, self._run, items)
                except Exception as exc:  # the batch as a whole failed: each caller gets the error
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # its caller was cancelled (the process is stopping)
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = None

    def close(self) -> None:
        """Let the running batch finish, then stop the thread."""
        self._executor.shutdown(wait=True)
