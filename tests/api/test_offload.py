"""The API's offloader: calls run on bounded threads; the queue is served oldest first until it is
congested, then newest first with late waiters refused; it never grows past its limit nor waits past its
timeout; a waiter that goes away gives back what it was given; a stall is told from a busy process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from appliance.api.offload import Offloader, Overloaded


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A blocking call that runs until opened, recording the order calls started in."""

    def __init__(self, started: list[str]) -> None:
        self.started = started
        self.event = threading.Event()

    def call(self, name: str) -> str:
        self.started.append(name)
        assert self.event.wait(10)
        return name


def run(test: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(test())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


def offloader(clock: Clock, **kw: Any) -> Offloader:
    defaults: dict[str, Any] = {"queue_limit": 10, "queue_timeout": 30, "queue_target": 1.0,
                                "congestion_interval": 2.0, "clock": clock}  # fmt: skip
    return Offloader(1, **(defaults | kw))


def test_the_queue_is_served_oldest_first_while_it_keeps_emptying() -> None:
    async def test() -> list[str]:
        clock, started = Clock(), list[str]()
        pool = offloader(clock)
        gate = Gate(started)
        tasks = [asyncio.create_task(pool.run(gate.call, name)) for name in ("a", "b", "c")]
        await settle()
        assert (started, pool.waiting, pool.running) == (["a"], 2, 1)
        gate.event.set()
        return list(await asyncio.gather(*tasks)) + started

    assert run(test) == ["a", "b", "c", "a", "b", "c"]


def test_a_congested_queue_serves_the_newest_and_refuses_the_late() -> None:
    async def test() -> None:
        clock, started = Clock(), list[str]()
        pool = offloader(clock)
        gate = Gate(started)
        first = asyncio.create_task(pool.run(gate.call, "first"))
        await settle()
        old = asyncio.create_task(pool.run(gate.call, "old"))
        await settle()
        clock.now += 3.0  # the queue has not emptied for longer than the congestion interval
        new = asyncio.create_task(pool.run(gate.call, "new"))
        await settle()
        gate.event.set()
        assert await first == "first"
        assert await new == "new"
        with pytest.raises(Overloaded, match="congested") as refused:
            await old
        assert refused.value.retry_after >= 1
        assert started == ["first", "new"]

    run(test)


def test_a_full_queue_refuses_at_once_and_a_long_wait_times_out() -> None:
    async def test() -> None:
        clock, started = Clock(), list[str]()
        pool = offloader(clock, queue_limit=1, queue_timeout=1.0)
        gate = Gate(started)
        first = asyncio.create_task(pool.run(gate.call, "first"))
        await settle()
        waiting = asyncio.create_task(pool.run(gate.call, "waiting"))
        await settle()
        with pytest.raises(Overloaded, match="1 requests are waiting"):
            await pool.run(gate.call, "refused")
        with pytest.raises(Overloaded, match=r"no thread was free within 1 s"):
            await waiting
        assert pool.waiting == 0
        gate.event.set()
        assert await first == "first"
        assert await pool.run(gate.call, "later") == "later"  # the refused ones left nothing behind

    run(test)


def test_a_waiter_that_goes_away_leaves_its_thread_to_the_next() -> None:
    async def test() -> None:
        clock, started = Clock(), list[str]()
        pool = offloader(clock)
        gate = Gate(started)
        first = asyncio.create_task(pool.run(gate.call, "first"))
        await settle()
        gone = asyncio.create_task(pool.run(gate.call, "gone"))
        await settle()
        gone.cancel()
        await settle()
        gate.event.set()
        assert await first == "first"
        assert await asyncio.wait_for(pool.run(gate.call, "next"), 5) == "next"
        assert started == ["first", "next"]

    run(test)


def test_a_stall_is_told_from_a_busy_process() -> None:
    async def test() -> None:
        clock, started = Clock(), list[str]()
        pool = offloader(clock)
        gate = Gate(started)
        assert pool.stalled(60) is None  # idle
        clock.now += 600  # idle for a long time, then busy: not stalled
        running = asyncio.create_task(pool.run(gate.call, "stuck"))
        await settle()
        assert pool.stalled(60) is None
        clock.now += 61
        assert pool.stalled(60) == pytest.approx(61)
        gate.event.set()
        await running
        assert pool.stalled(60) is None

    run(test)


def test_overloaded_says_when_a_new_call_would_most_likely_be_refused() -> None:
    async def test() -> None:
        clock, started = Clock(), list[str]()
        pool = offloader(clock, queue_limit=3)
        gate = Gate(started)
        assert not pool.overloaded(0)  # a thread is free
        tasks = [asyncio.create_task(pool.run(gate.call, "running"))]
        await settle()
        assert not pool.overloaded(1)  # busy, nothing waits
        tasks.append(asyncio.create_task(pool.run(gate.call, "waiting")))
        await settle()
        assert not pool.overloaded(5)  # one waits, the queue is young: it will drain
        clock.now += 3.0
        assert not pool.overloaded(2)  # congested, but no more in progress than a round or two
        assert pool.overloaded(3)  # congested, and more on their way than the thread can serve soon
        clock.now -= 3.0
        tasks += [asyncio.create_task(pool.run(gate.call, f"w{i}")) for i in range(2)]
        await settle()
        assert pool.overloaded(4)  # the queue is full
        gate.event.set()
        await asyncio.gather(*tasks)
        assert not pool.overloaded(100)

    run(test)
