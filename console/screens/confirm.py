"""A yes/no question that names what it will act on ("Suspend tenant acme?")."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmDialog(ModalScreen[bool]):
    """Answers True for the confirm button (or `y`), False for cancel (`n`, escape)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, message: str, confirm: str = "Confirm", danger: bool = False) -> None:
        super().__init__()
        self.title_text, self.message, self.confirm, self.danger = title, message, confirm, danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Label(self.message, id="confirm-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, id="yes", variant="error" if self.danger else "primary")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
