"""Ask where to save the shown log lines; a path that could not be written comes back with the reason."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class SaveDialog(ModalScreen[str | None]):
    """Dismissed with the path typed (as typed: `~` is expanded by the writer), or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, path: str, error: str = "") -> None:
        super().__init__()
        self.what, self.path, self.error = what, path, error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="save-dialog"):
            yield Label(f"Save {self.what}", classes="dialog-title")
            yield Input(value=self.path, placeholder="file path", id="save-path")
            yield Label(self.error, id="save-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-path", Input).focus()

    def _submit(self) -> None:
        path = self.query_one("#save-path", Input).value.strip()
        if not path:
            self.query_one("#save-error", Label).update("Give a file path.")
            return
        self.dismiss(path)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
