"""Create an operator: e-mail address, display name (optional) and whether they may only read."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label


@dataclass(frozen=True)
class NewOperator:
    email: str
    display_name: str | None
    read_only: bool


class OperatorForm(ModalScreen[NewOperator | None]):
    """Dismissed with the values, or None when cancelled. The API checks them; its refusal is shown."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="operator-form"):
            yield Label("New operator", classes="dialog-title")
            yield Input(placeholder="e-mail address (their login)", id="email")
            yield Input(placeholder="display name (optional)", id="display-name")
            yield Checkbox("Read-only: sees everything, changes nothing", id="read-only")
            yield Label("A one-time password is shown once; they choose their own at the first sign-in.")
            yield Label("", id="form-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#email", Input).focus()

    def _submit(self) -> None:
        email = self.query_one("#email", Input).value.strip()
        if "@" not in email:
            self.query_one("#form-error", Label).update("An e-mail address is needed.")
            return
        name = self.query_one("#display-name", Input).value.strip() or None
        self.dismiss(NewOperator(email, name, self.query_one("#read-only", Checkbox).value))

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
