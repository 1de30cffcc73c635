"""Choose a new password: asked at the first sign-in with a one-time password (`appliance admin create`).

There is no "later": until the password is changed the API answers that account nothing but the change
itself (403 PASSWORD_CHANGE_REQUIRED), so the dialog offers the change or signing out, and escape only
says so."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from appliance.client.errors import ApiError
from console.host import host


class PasswordScreen(ModalScreen[bool]):
    """Dismissed with True once the password is changed, False after signing out instead."""

    BINDINGS = [Binding("escape", "required", "Required", show=False)]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="password-change"):
            yield Label("Choose your password", classes="dialog-title")
            yield Label("You signed in with a one-time password: replace it now.")
            yield Input(placeholder="new password", password=True, id="new")
            yield Input(placeholder="the same again", password=True, id="again")
            yield Label("", id="password-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Change", id="change", variant="primary")
                yield Button("Sign out", id="sign-out")

    def on_mount(self) -> None:
        self.query_one("#new", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "new":
            self.query_one("#again", Input).focus()
        else:
            self.change()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "change":
            self.change()
        else:
            self.sign_out()

    def action_required(self) -> None:
        self.query_one("#password-error", Label).update(
            "The password must be changed before anything else: choose one, or sign out."
        )

    def sign_out(self) -> None:
        self.dismiss(False)
        host(self.app).action_sign_out()

    @work(exclusive=True, group="password")
    async def change(self) -> None:
        new = self.query_one("#new", Input).value
        error = self.query_one("#password-error", Label)
        if new != self.query_one("#again", Input).value:
            error.update("The two passwords differ.")
            return
        error.update("Changing…")
        try:
            await host(self.app).connection.api.change_password(self.current, new)
        except ApiError as exc:
            error.update(exc.message)  # names the rule it breaks (too short, too common...)
            return
        self.app.notify("Password changed.")
        self.dismiss(True)
