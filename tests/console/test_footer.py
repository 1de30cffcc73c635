"""The views' footer follows the keys a view allows (a key that becomes allowed appears, one refused goes),
and is rebuilt only when they change: a focus change or a refresh of the same keys leaves it as it is."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Button

from console.widgets.footer import ViewFooter
from tests.console.pilot import screen_text


class CountingFooter(ViewFooter):
    rebuilds = 0

    async def recompose(self) -> None:
        self.rebuilds += 1
        await super().recompose()


class KeysScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry"),
        Binding("x", "cancel", "Cancel job"),
    ]
    writable = True

    def compose(self) -> ComposeResult:
        yield Button("one", id="one")
        yield Button("two", id="two")
        yield CountingFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.writable or action not in ("retry", "cancel")

    def action_retry(self) -> None: ...

    def action_cancel(self) -> None: ...


class KeysApp(App[None]):
    def on_mount(self) -> None:
        self.push_screen(KeysScreen())


def keys_shown(app: KeysApp) -> str:
    return screen_text(app, "CountingFooter")


def test_the_footer_shows_the_allowed_keys_and_is_rebuilt_only_when_they_change() -> None:
    asyncio.run(scenario())


async def scenario() -> None:
    app = KeysApp()
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, KeysScreen)
        footer = screen.query_one(CountingFooter)
        assert "Retry" in keys_shown(app)
        assert "Cancel job" in keys_shown(app)
        built = footer.rebuilds

        for _ in range(5):  # the same keys, asked again and again: nothing to rebuild
            screen.refresh_bindings()
        screen.query_one("#two", Button).focus()
        screen.query_one("#one", Button).focus()
        await pilot.pause()
        assert footer.rebuilds == built

        screen.writable = False  # the keys change: one rebuild, however often it is asked for
        for _ in range(5):
            screen.refresh_bindings()
        await pilot.pause()
        assert footer.rebuilds == built + 1
        assert "Retry" not in keys_shown(app)
        assert "Cancel job" not in keys_shown(app)

        screen.writable = True
        screen.refresh_bindings()
        await pilot.pause()
        assert "Retry" in keys_shown(app)
        assert "Cancel job" in keys_shown(app)
