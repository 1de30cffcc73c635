"""Waiting in Pilot tests for what the console shows after real calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen


async def until(
    pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 20.0
) -> None:
    """Let the app run until `predicate()` is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"the console did not show {what} within {timeout:g}s")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


def showing(app: App[None], kind: type[Screen[Any]]) -> bool:
    """The screen on top is a `kind` and has been composed and mounted."""
    return isinstance(app.screen, kind) and app.screen.is_mounted
