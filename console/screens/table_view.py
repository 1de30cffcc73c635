"""What the views built around one keyed table share: the `/` filter box above it (typing filters the rows,
Enter goes back to the table, Escape clears and hides it) and the jump to a row by its key (the palette's
"Tenant acme", a dashboard link)."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Input

from console.screens.base import ConsoleScreen
from console.widgets.row_table import RowTable


class TableScreen(ConsoleScreen):
    """A view whose `table` is filtered by the Input with the id `FILTER`; `ROW` names one row in messages."""

    FILTER: ClassVar[str] = ""
    ROW: ClassVar[str] = "row"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    table: RowTable

    def _filter_box(self) -> Input:
        return self.query_one(f"#{self.FILTER}", Input)

    def action_filter(self) -> None:
        box = self._filter_box()
        box.remove_class("hidden")
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == self.FILTER:
            self.table.filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == self.FILTER:
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self._filter_box()
        box.value = ""
        box.display = False
        self.table.filter("")
        self.table.focus()

    def jump(self, key: str) -> None:
        if not self.table.move_to(key):
            self.notify(f"That {self.ROW} is not in the table (yet).", severity="warning")
        self.table.focus()
