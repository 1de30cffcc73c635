"""One background thread that refreshes the API's in-process caches, so that no request waits for one.

The caches on a request's path (which sessions were revoked, each tenant's status, the rate limits in force)
are refreshed a little before they go stale, by this thread, at the request's prompting: the request goes
on with what is cached, which is still within its promise. Only a cache that went fully stale (the thread
could not refresh it, the database being down) makes a request read for itself.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class Refresher:
    """Runs submitted refreshes one at a time on a daemon thread; a key already waiting is not added again."""

    def __init__(self, name: str = "appliance-refresher") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Hashable, Callable[[], object]] | None] = queue.SimpleQueue()
        self._waiting: set[Hashable] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, key: Hashable, refresh: Callable[[], object]) -> None:
        """Run ``refresh`` soon, unless a refresh under ``key`` is already waiting or running."""
        with self._lock:
            if key in self._waiting:
                return
            self._waiting.add(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((key, refresh))

    def stop(self) -> None:
        """Let the thread end once what is queued has run."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, refresh = item
            try:
                refresh()
            except Exception as exc:  # the request path falls back to reading for itself
                log.warning("could not refresh a cache (%s): %s", key, exc)
            finally:
                with self._lock:
                    self._waiting.discard(key)
