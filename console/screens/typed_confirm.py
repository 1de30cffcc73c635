"""A destructive action's confirmation: the user types the target's name (a tenant's slug) to go on.

The whole question is shown, wrapped; a line under the buttons says that Enter confirms only once the name
is typed (before, it says what is wrong), and that Esc cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class TypedConfirmDialog(ModalScreen[bool]):
    """True only when `expected` was typed exactly and confirmed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, message: str, expected: str, confirm: str = "Delete") -> None:
        super().__init__()
        self.title_text, self.message, self.expected, self.confirm = title, message, expected, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.message, markup=False)  # a name given by a user is shown as typed
            yield Label(f"Type [b]{self.expected}[/b] to confirm:")
            yield Input(placeholder=self.expected, id="typed")
            yield Label("", id="typed-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, id="yes", variant="error", disabled=True)
                yield Button("Cancel", id="no")
            yield Label(
                f"Enter: {self.confirm} (once {self.expected} is typed) · Esc: Cancel",
                id="typed-keys",
                classes="dialog-keys",
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = event.value != self.expected

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.expected:
            self.dismiss(True)
        else:
            self.query_one("#typed-error", Label).update(f"That is not {self.expected!r}.")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes" and self.query_one(Input).value == self.expected)

    def action_cancel(self) -> None:
        self.dismiss(False)
