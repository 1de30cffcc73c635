"""Waiting in Pilot tests for what the console shows after real calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Label

if TYPE_CHECKING:
    from console.screens.tenants import TenantsScreen
    from console.widgets.row_table import RowTable


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


def screen_text(app: App[None], selector: str | None = None) -> str:
    """The words the screen on top shows (only within the widget `selector` finds, such as a dialog), as
    one line: its rows joined by spaces, borders left out and runs of spaces made one (so that a sentence
    wrapped over several rows reads whole)."""
    strips = app.screen._compositor.render_strips()
    if selector is None:
        rows = [strip.text for strip in strips]
    else:
        region = app.screen.query_one(selector).region
        rows = [strip.crop(region.x, region.right).text for strip in strips[region.y : region.bottom]]
    return " ".join(" ".join(rows).translate(str.maketrans("│╭╮╰╯─", "      ")).split())


def showing(app: App[None], kind: type[Screen[Any]]) -> bool:
    """The screen on top is a `kind` and has been composed and mounted."""
    return isinstance(app.screen, kind) and app.screen.is_mounted


async def confirm(pilot: Pilot[None], key: str, title: str) -> None:
    """Press `key`, check that the confirmation it opens names `title` ("Restart worker?"), and say yes."""
    from console.screens.confirm import ConfirmDialog

    app = pilot.app
    await pilot.press(key)
    await until(pilot, lambda: showing(app, ConfirmDialog), f"the confirmation {title!r}")
    shown = str(app.screen.query_one(".dialog-title", Label).content)
    assert title in shown, shown
    await pilot.press("y")


async def tenant_row(pilot: Pilot[None], tenant_id: str) -> tuple[TenantsScreen, RowTable]:
    """The tenants view on top, once the row of `tenant_id` is in its table."""
    from console.screens.tenants import TenantsScreen
    from console.widgets.row_table import RowTable

    screen = pilot.app.screen
    assert isinstance(screen, TenantsScreen)
    table = screen.query_one(RowTable)
    await until(pilot, lambda: tenant_id in table.rows, "the tenant's row")
    return screen, table
