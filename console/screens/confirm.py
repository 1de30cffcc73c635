"""A yes/no question that names what it will act on ("Suspend tenant acme?").

The whole question is shown, wrapped (a long tenant name is never cut off). Enter presses the highlighted
button, and a line under the buttons says what Enter, `y` and `n` do. The button highlighted first is the
default: Cancel when the action is dangerous (suspend, stop, restart), as in most terminal programs' and
desktops' destructive confirmations, so that an Enter pressed out of habit does nothing harmful; the action
itself otherwise.
"""

from __future__ import annotations

from textual import events
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
            # Not markup: a name given by a user ("[b]ig co") is shown as typed.
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.message, id="confirm-message", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.confirm, id="yes", variant="error" if self.danger else "primary")
                yield Button("Cancel", id="no")
            yield Label("", id="confirm-keys", classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    @property
    def default(self) -> str:
        """The label of the button Enter presses now (the highlighted one)."""
        focused = self.focused
        return str(focused.label) if isinstance(focused, Button) else "Cancel"

    @property
    def keys_line(self) -> str:
        return str(self.query_one("#confirm-keys", Label).content)

    def on_descendant_focus(self, _event: events.DescendantFocus) -> None:
        self.query_one("#confirm-keys", Label).update(
            f"Enter: {self.default} · y: {self.confirm} · n/Esc: Cancel · Tab: switch"
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
