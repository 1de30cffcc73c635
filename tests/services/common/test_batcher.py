"""Batches of calls from an event loop (appliance.services.common.batcher): callers that arrive while a batch
runs share the next one, each gets its own item's result or exception, a batch that fails as a whole fails its
own callers only, and the batches run one at a time on one thread of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from appliance.services.common.batcher import Batcher


class Recorder:
    """A batch function that doubles its items, records each batch and the thread it ran on, and waits
    for ``gate`` while its first batch runs (so that callers pile up behind it)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.threads.add(threading.current_thread().name)
            self.batches.append(list(items))
            if len(self.batches) == 1:
                self.gate.wait(10)
            if any(item < 0 for item in items) and len(items) > 1 and 999 in items:
                raise RuntimeError("the whole batch failed")
            return [ValueError(f"no {item}") if item < 0 else item * 2 for item in items]
        finally:
            with self._lock:
                self.running -= 1


async def _gather(batcher: Batcher[int, int], items: list[int], recorder: Recorder) -> list[object]:
    first = asyncio.ensure_future(batcher.submit(items[0]))
    while not recorder.batches:  # the first batch is running (and held at the gate)
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(batcher.submit(item)) for item in items[1:]]
    await asyncio.sleep(0.01)
    recorder.gate.set()
    return list(await asyncio.gather(first, *rest, return_exceptions=True))


def test_callers_that_arrive_during_a_batch_share_the_next_one() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder, name="test-batches")
    try:
        results = asyncio.run(_gather(batcher, list(range(1, 11)), recorder))
    finally:
        batcher.close()
    assert results == [n * 2 for n in range(1, 11)]
    assert recorder.batches == [[1], list(range(2, 11))]
    assert recorder.threads == {"test-batches_0"}
    assert recorder.most_at_once == 1


def test_an_item_that_fails_fails_its_own_caller_only() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder, name="test-batches")
    try:
        results = asyncio.run(_gather(batcher, [1, 2, -3, 4], recorder))
    finally:
        batcher.close()
    assert results[:2] == [2, 4]
    assert isinstance(results[2], ValueError)
    assert results[3] == 8


def test_a_batch_that_fails_as_a_whole_fails_its_callers_and_the_next_batch_runs() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder, name="test-batches")

    async def scenario() -> tuple[list[object], int]:
        results = await _gather(batcher, [1, 999, -1], recorder)
        return results, await batcher.submit(5)

    try:
        results, after = asyncio.run(scenario())
    finally:
        batcher.close()
    assert results[0] == 2
    assert [type(r) for r in results[1:]] == [RuntimeError, RuntimeError]
    assert after == 10


def test_a_batch_is_at_most_limit_items() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder, name="test-batches", limit=3)
    try:
        results = asyncio.run(_gather(batcher, list(range(1, 9)), recorder))
    finally:
        batcher.close()
    assert results == [n * 2 for n in range(1, 9)]
    assert recorder.batches == [[1], [2, 3, 4], [5, 6, 7], [8]]


@pytest.mark.parametrize("count", [1, 3])
def test_an_idle_batcher_runs_a_lone_call_at_once(count: int) -> None:
    recorder = Recorder()
    recorder.gate.set()
    batcher: Batcher[int, int] = Batcher(recorder, name="test-batches")

    async def one_by_one() -> list[int]:
        return [await batcher.submit(n) for n in range(count)]

    try:
        assert asyncio.run(one_by_one()) == [n * 2 for n in range(count)]
    finally:
        batcher.close()
    assert recorder.batches == [[n] for n in range(count)]
