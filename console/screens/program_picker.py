"""Choose the program whose log is shown: every supervised program, and the supervisor itself."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class ProgramPicker(ModalScreen[str | None]):
    """Dismissed with the chosen name (enter or a click), or None (escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, names: Sequence[str], current: str | None = None) -> None:
        super().__init__()
        self.names, self.current = list(names), current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="program-picker"):
            yield Label("Show the log of", classes="dialog-title")
            yield OptionList(*(Option(name, id=name) for name in self.names), id="program-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.names:
            options.highlighted = self.names.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
