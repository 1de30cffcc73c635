"""What every view shares: the status bar, the footer of its own keys (from the command table), read-only
gating through the app, and a hook called after each poll."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen

from appliance.client.errors import ApiError, Unauthorized
from appliance.client.supervisor import SupervisorError, SupervisorUnavailable
from console import commands
from console.host import ConsoleHost, host
from console.widgets.footer import ViewFooter
from console.widgets.status_bar import StatusBar

T = TypeVar("T")


class ConsoleScreen(Screen[None]):
    """A view of the console; subclasses set NAME and TITLE and compose `body()`."""

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if cls.__dict__.get("NAME"):  # a view's keys come from the command table, before Textual merges them
            cls.BINDINGS = [*commands.bindings(cls.NAME), *cls.__dict__.get("BINDINGS", [])]
        super().__init_subclass__(**kwargs)

    def __init__(self, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name, id, classes)
        # Made now, a view is styled as it mounts with the CSS as it is now; Textual (8.2, pinned) would
        # parse and apply the whole app's CSS twice more as it is first shown (about 60 ms of each view's
        # first load). A theme changed later still restyles it, as it does every screen.
        self._css_update_count = self.app._css_update_count

    @property
    def console(self) -> ConsoleHost:
        return host(self.app)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.TITLE)
        yield from self.body()
        yield ViewFooter()

    def body(self) -> ComposeResult:
        yield from ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Write actions are off (and hidden from the footer) in read-only mode."""
        return self.console.allows(self.NAME, action)

    def on_screen_resume(self) -> None:
        self.polled()

    _generation = -1

    def polled(self) -> None:
        """Redraw from the app's state (after every poll while shown)."""
        self.query_one(StatusBar).show()
        if self._generation != self.console.session_generation:
            self._generation = self.console.session_generation
            self.refresh_bindings()
            self.signed_in()

    def signed_in(self) -> None:
        """A session began (or the view is shown for the first time): load what needs one."""

    def jump(self, key: str) -> None:
        """Put the cursor on the row called `key` (a tenant's id, a program's name)."""

    async def attempt(self, what: str, call: Awaitable[T]) -> T | None:
        """Await one call to the API or the supervisor; a refusal or an outage becomes a message naming
        `what` ("suspend acme: ..."), a session that ended asks to sign in again. None when it failed."""
        try:
            return await call
        except Unauthorized as exc:
            self.console.session_ended(exc)
        except ApiError as exc:
            self.notify(f"{what}: {exc.message}", severity="error", timeout=8)
        except (SupervisorError, SupervisorUnavailable) as exc:
            self.notify(f"{what}: {exc}", severity="error", timeout=8)
        return None
