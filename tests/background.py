"""Expensive fixtures prepared in a thread from the end of the collection, while the other tests run.

Building images or converging a host takes minutes and mostly waits on the network, the disk or child
processes; started the moment the run knows it needs them, they overlap the tests that come before their
own. A test module (or tests/containers.py) declares one at import time::

    CONVERGED = background.Preparation("converged", converge)   # converge(stack) -> value

and its fixture returns ``CONVERGED.result()``: the value, or what the work raised (a skip too), once the
work is done. `tests/conftest.py` starts every preparation whose fixture a selected test uses
(`start_for`), and closes them all at the end of the run (`close_all`); a fixture that is done with one
earlier closes it itself. The work enters what must be undone later into the ``ExitStack`` it is given.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import pytest

T = TypeVar("T")

_registry: dict[str, Preparation[object]] = {}


class Preparation(Generic[T]):
    """One piece of work, run once in a thread; `result()` waits for it."""

    def __init__(self, fixture: str, work: Callable[[contextlib.ExitStack], T]) -> None:
        self.fixture = fixture
        self._work = work
        self._stack = contextlib.ExitStack()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _registry[fixture] = self  # type: ignore[assignment]

    def start(self) -> None:
        """Start the work unless it has started already."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name=f"prepare {self.fixture}", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work(self._stack)
        except BaseException as exc:  # a failure or a skip: result() raises it in the test that waits
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> T:
        """The work's value once it is done (started now if nothing started it); raises what it raised."""
        self.start()
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def close(self) -> None:
        """Wait for the work if it runs, then undo what it entered into its stack."""
        with self._lock:
            started = self._thread is not None
        if started:
            self._done.wait()
        self._stack.close()


def start_for(items: Sequence[pytest.Item]) -> None:
    """Start the preparations whose fixture one of ``items`` uses."""
    wanted: set[str] = set()
    for item in items:
        wanted |= set(getattr(item, "fixturenames", ()))
    for fixture, preparation in _registry.items():
        if fixture in wanted:
            preparation.start()


def close_all() -> None:
    for preparation in reversed(list(_registry.values())):
        preparation.close()
