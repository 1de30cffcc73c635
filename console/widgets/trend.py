"""A titled sparkline of one series, with its latest value in the title (the dashboard's and the jobs
view's trends)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class Trend(Vertical):
    """A titled sparkline of one series."""

    DEFAULT_CSS = """
    Trend { width: 1fr; height: 4; border: round $panel; padding: 0 1; }
    Trend > Label { width: 1fr; }
    Trend > Sparkline { height: 2; }
    """

    def __init__(self, title: str, id: str) -> None:
        super().__init__(id=id)
        self.title_text = title
        # Held, not queried: a view's worker that ends as the console quits may draw on a trend whose
        # children were already removed (a query would raise there; an update of a removed widget does not).
        self.label = Label(title)
        self.sparkline = Sparkline([], summary_function=max)

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.sparkline

    def show(self, values: list[float], latest: str) -> None:
        self.label.update(f"{self.title_text} [b]{latest}[/b]", layout=False)  # one line, 1fr wide
        self.sparkline.data = values or [0.0]
