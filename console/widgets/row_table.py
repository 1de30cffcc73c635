"""A keyed table that draws only the rows on screen, so 10,000 of them load, filter and update at once.

Rows are keyed (a tenant's id, a program's name): `set_rows` updates them in place, so a refresh keeps
the cursor on the same row and the scroll where it was, and redraws only what is shown. `filter` keeps
the rows whose text contains every word typed, case-insensitively.

Cells are measured in terminal cells, not characters: a CJK character or an emoji takes two, a combining
accent none, so a tenant called "株式会社" or "Café ☕" keeps its columns in line; control characters are
drawn as "�" (a name must not move the cursor or send escape sequences to the terminal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True)
class Column:
    """A column: a fixed `width`, or the one that takes the rest (`width=0`); `colours` maps a cell's
    value to a style ("suspended" -> "yellow")."""

    label: str
    width: int = 0
    align: str = "left"
    colours: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=64)
def _parsed(style: str) -> Style:
    return Style.parse(style)


#: C0 and C1 control characters (tab, newline, escape...): drawn as one "�" each.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def fit(text: str, width: int, align: str = "left") -> str:
    """`text` in exactly `width` terminal cells: padded, or cut with "…" (never inside a wide character or
    an emoji sequence)."""
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)
    cells = cell_len(text)
    if cells > width:
        head = chop_cells(text, width - 1)[0] if width > 1 else ""
        if cell_len(head) > width - 1:  # one wide character and no room for it
            head = ""
        text = head + "…" if width > 0 else ""
        cells = cell_len(text)
    padding = " " * (width - cells)
    return padding + text if align == "right" else text + padding


class RowTable(ScrollView, can_focus=True):
    """The console's table: keyed rows, a cursor, a fixed header line, and a filter."""

    DEFAULT_CSS = """
    RowTable { height: 1fr; }
    RowTable > .row-table--header { text-style: bold; color: $text-muted; }
    RowTable > .row-table--cursor { background: $accent 40%; }
    RowTable:focus > .row-table--cursor { background: $accent; color: $text; }
    """
    COMPONENT_CLASSES = {"row-table--header", "row-table--cursor"}
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "edge(0)", show=False),
        Binding("end", "edge(1)", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another row (`key` is None when the table is empty)."""

        def __init__(self, table: RowTable, key: str | None) -> None:
            super().__init__()
            self.table, self.key = table, key

        @property
        def control(self) -> RowTable:
            return self.table

    def __init__(
        self, columns: Sequence[Column], *, id: str | None = None, empty: str = "Nothing here."
    ) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.empty = empty
        self.rows: dict[str, tuple[str, ...]] = {}
        self._search: dict[str, str] = {}
        self._order: list[str] = []
        self.shown: list[str] = []
        self._index: dict[str, int] = {}
        self.cursor = 0
        self.needle = ""
        self._widths: list[int] = []
        self._highlighted: str | None = None

    # --- data -----------------------------------------------------------------------------------------

    def set_rows(self, rows: Iterable[tuple[str, Sequence[str]]]) -> int:
        """Make the table hold exactly `rows` (in this order); returns how many rows changed or came."""
        keep = self.cursor_key
        changed = 0
        order: list[str] = []
        fresh: dict[str, tuple[str, ...]] = {}
        for key, cells in rows:
            values = tuple(cells)
            if self.rows.get(key) != values:
                changed += 1
                self._search[key] = " ".join(values).lower()
            fresh[key] = values
            order.append(key)
        for gone in self.rows.keys() - fresh.keys():
            del self._search[gone]
            changed += 1
        self.rows = fresh
        if order != self._order:
            self._order = order
            self._apply_filter(keep)
        elif changed:
            self._apply_filter(keep) if self.needle else self.refresh()
        return changed

    def append_rows(self, rows: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Add rows after the last one (a list arriving page by page), without looking at the others."""
        words = self.needle.split()
        for key, cells in rows:
            values = tuple(cells)
            if key not in self.rows:
                self._order.append(key)
            self.rows[key] = values
            text = self._search[key] = " ".join(values).lower()
            if key not in self._index and (not words or all(w in text for w in words)):
                self._index[key] = len(self.shown)
                self.shown.append(key)
        self.virtual_size = Size(self.size.width, len(self.shown) + 1)
        self.refresh()
        self._announce()

    def update_row(self, key: str, cells: Sequence[str]) -> None:
        """Change one row in place (a tenant that was just suspended)."""
        if key in self.rows:
            self.rows[key] = tuple(cells)
            self._search[key] = " ".join(cells).lower()
            self._apply_filter(self.cursor_key)

    def filter(self, text: str) -> None:
        """Show only the rows containing every word of `text` (case-insensitive); "" shows all."""
        self.needle = text.strip().lower()
        self._apply_filter(self.cursor_key)

    def _apply_filter(self, keep: str | None) -> None:
        words = self.needle.split()
        if words:
            search = self._search
            self.shown = [k for k in self._order if all(w in search[k] for w in words)]
        else:
            self.shown = list(self._order)
        self._index = {k: i for i, k in enumerate(self.shown)}
        self.cursor = self._index.get(keep, min(self.cursor, max(0, len(self.shown) - 1))) if keep else 0
        self.virtual_size = Size(self.size.width, len(self.shown) + 1)
        self._follow_cursor()
        self.refresh()
        self._announce()

    @property
    def cursor_key(self) -> str | None:
        return self.shown[self.cursor] if 0 <= self.cursor < len(self.shown) else None

    def move_to(self, key: str) -> bool:
        """Put the cursor on `key` (clearing a filter that hides it); False when there is no such row."""
        if key not in self.rows:
            return False
        if key not in self._index:
            self.filter("")
        self.cursor = self._index[key]
        self._follow_cursor()
        self.refresh()
        self._announce()
        return True

    # --- movement -------------------------------------------------------------------------------------

    def _announce(self) -> None:
        key = self.cursor_key
        if key != self._highlighted:
            self._highlighted = key
            self.post_message(self.Highlighted(self, key))

    def _follow_cursor(self) -> None:
        rows_shown = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows_shown:
            self.scroll_to(y=self.cursor - rows_shown + 1, animate=False, immediate=True)

    def _move(self, cursor: int) -> None:
        if not self.shown:
            return
        self.cursor = max(0, min(len(self.shown) - 1, cursor))
        self._follow_cursor()
        self.refresh()
        self._announce()

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self._move(self.cursor + direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self._move(len(self.shown) - 1 if end else 0)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self._move(int(self.scroll_y) + event.y - 1)

    def on_resize(self, _event: events.Resize) -> None:
        self.virtual_size = Size(self.size.width, len(self.shown) + 1)
        self._widths = []
        self._follow_cursor()

    # --- drawing --------------------------------------------------------------------------------------

    def _column_widths(self, width: int) -> list[int]:
        fixed = sum(c.width + 1 for c in self.columns if c.width)
        flexible = [c for c in self.columns if not c.width]
        rest = max(8, width - fixed - len(flexible))
        return [c.width or max(8, rest // max(1, len(flexible))) for c in self.columns]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if len(self._widths) != len(self.columns) or sum(self._widths) + len(self.columns) < width - 1:
            self._widths = self._column_widths(width)
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("row-table--header")
            text = " ".join(fit(c.label, w, c.align) for c, w in zip(self.columns, self._widths, strict=True))
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.shown):
            if index == 0 and not self.shown:
                note = self.empty if not self.needle else f"No row matches {self.needle!r}."
                return Strip([Segment(note, base + Style(dim=True))]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        key = self.shown[index]
        cells = self.rows[key]
        row_style = (
            base + self.get_component_rich_style("row-table--cursor") if index == self.cursor else base
        )
        segments: list[Segment] = []
        for column, cell_width, value in zip(self.columns, self._widths, cells, strict=False):
            colour = column.colours.get(value)
            style = row_style + _parsed(colour) if colour else row_style
            segments.append(Segment(fit(value, cell_width, column.align), style))
            segments.append(Segment(" ", row_style))
        return Strip(segments).adjust_cell_length(width, row_style)
