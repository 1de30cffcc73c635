"""Structured supervisor events: a bounded ring of the recent ones, and subscribers told of each new one."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
"""`{"time": unix seconds, "kind": ..., "program": ..., "instance": ..., "message": ..., **fields}`."""

CAPACITY = 1000  # recent events kept for `{"cmd": "events"}`; older ones are only in supervisor.log


class Events:
    """Records events and fans them out; a subscriber that raises is dropped, never the supervisor."""

    def __init__(self, clock: Callable[[], float] = time.time, capacity: int = CAPACITY) -> None:
        self.clock = clock
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._subscribers: list[Callable[[Event], None]] = []

    def emit(
        self, kind: str, message: str, program: str | None = None, instance: int | None = None, **fields: Any
    ) -> Event:
        """Record one event and hand it to every subscriber."""
        event: Event = {
            "time": self.clock(),
            "kind": kind,
            "program": program,
            "instance": instance,
            "message": message,
            **fields,
        }
        self._ring.append(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # a broken subscriber must not stop supervision
                self.unsubscribe(subscriber)
        return event

    def recent(self, since: float | None = None) -> list[Event]:
        """The events kept, oldest first; with `since`, only those at or after that Unix time."""
        return [e for e in self._ring if since is None or e["time"] >= since]

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Call `subscriber(event)` for every event from now on."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Stop telling `subscriber`; unknown ones are fine."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
