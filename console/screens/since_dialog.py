"""Ask from when something is to be done ("replay every failed delivery to <url> since ..."): an age such as
`2h` or `3d`, or an RFC 3339 time; 24 hours ago unless changed. Input that is not a time, or a time to come,
is refused in the dialog, named, and never sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from console.screens.audit_query import parse_time

DEFAULT = "24h"


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """The time `text` means (an age before `now`, or RFC 3339), in UTC; ValueError naming it."""
    if not text.strip():
        raise ValueError("since: say from when (24h, 3d, or 2026-11-22T01:27:39Z)")
    try:
        moment = parse_time(text, now)
    except ValueError as exc:
        raise ValueError(f"since: {exc}") from None
    if moment > now:
        raise ValueError(f"since: {text.strip()!r} is still to come")
    return moment


class SinceDialog(ModalScreen[dt.datetime | None]):
    """Dismissed with the time (UTC) when confirmed, None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        message: str,
        confirm: str = "Go",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        super().__init__()
        self.title_text, self.message, self.confirm, self.clock = title, message, confirm, clock

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="since-dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.message, markup=False)  # an endpoint's URL is shown as it is
            yield Label("Since (2h, 3d, or 2026-11-22T01:27:39Z; without an offset: local time):")
            yield Input(DEFAULT, placeholder=DEFAULT, id="since")
            yield Label("", id="since-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, id="yes", variant="primary")
                yield Button("Cancel", id="no")
            yield Label(f"Enter: {self.confirm} · Esc: Cancel", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def error(self) -> str:
        """Why the input was refused ("" when it was not)."""
        return str(self.query_one("#since-error", Label).content)

    def _submit(self) -> None:
        try:
            moment = parse_since(self.query_one(Input).value, self.clock())
        except ValueError as exc:
            self.query_one("#since-error", Label).update(str(exc))
            return
        self.dismiss(moment)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self.query_one("#since-error", Label).update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "yes":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
