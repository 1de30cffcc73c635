"""What the views built around one keyed table share: the `/` filter box above it (typing filters the rows,
Enter goes back to the table, Escape clears and hides it), the jump to a row by its key (the palette's
"Tenant acme", a dashboard link), and the rows loaded when a session begins and again every `RELOAD_S`
while the view is shown (never two loads at once)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Input

from console.screens.base import ConsoleScreen
from console.widgets.row_table import RowTable


class TableScreen(ConsoleScreen):
    """A view whose `table` is filtered by the Input with the id `FILTER`; `ROW` names one row in messages."""

    FILTER: ClassVar[str] = ""
    ROW: ClassVar[str] = "row"
    RELOAD_S: ClassVar[float] = 15.0
    SIGN_IN: ClassVar[str] = "Sign in (ctrl+l) to see the rows."
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    table: RowTable
    _loading = False  # a load runs: the periodic reload waits for the next tick

    # --- loading (subclasses implement `load` and `say`) ---------------------------------------------

    @abstractmethod
    def load(self) -> object:
        """Start loading the rows (a worker)."""

    @abstractmethod
    def say(self, text: str | Text) -> None:
        """Show one line above the table (what was loaded, or why not)."""

    def keep_loaded(self) -> None:
        """Reload every RELOAD_S while shown and signed in (call once, when mounted)."""
        self.set_interval(self.RELOAD_S, self._reload_if_shown)

    def signed_in(self) -> None:
        self.action_reload_rows()

    def _reload_if_shown(self) -> None:
        if self.is_current and self.console.signed_in_as and not self._loading:
            self.action_reload_rows()

    def action_reload_rows(self) -> None:
        if not self.console.signed_in_as:
            self.say(self.SIGN_IN)
            return
        self.load()

    # --- filter ---------------------------------------------------------------------------------------

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
