"""The dashboard: services at a glance, the API's health and latency, request and error rates, queue depth."""

from __future__ import annotations

from statistics import fmean

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from console import format as fmt
from console.screens.base import ConsoleScreen
from console.widgets import programs
from console.widgets.row_table import RowTable

CHECK_COLOURS = {"ok": "green", "degraded": "yellow", "down": "bold red", "unknown": "dim"}


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

    def compose(self) -> ComposeResult:
        yield Label(self.title_text)
        yield Sparkline([], summary_function=max)

    def show(self, values: list[float], latest: str) -> None:
        self.query_one(Label).update(f"{self.title_text} [b]{latest}[/b]")
        self.query_one(Sparkline).data = values or [0.0]


class DashboardScreen(ConsoleScreen):
    NAME = "dashboard"
    TITLE = "Dashboard"

    def body(self) -> ComposeResult:
        with Horizontal(id="trends"):
            yield Trend("Latency", id="trend-latency")
            yield Trend("Requests", id="trend-requests")
            yield Trend("5xx", id="trend-errors")
            yield Trend("Queue", id="trend-queue")
        yield Static(id="health-line")
        yield RowTable(programs.COLUMNS, id="dashboard-programs", empty="No supervisor answers.")

    def polled(self) -> None:
        super().polled()
        state = self.console.state
        latency = list(state.latency)
        self.query_one("#trend-latency", Trend).show(
            latency, f"{latency[-1]:.0f}ms ~{fmean(latency):.0f}" if latency and state.api.up else "-"
        )
        requests, errors, depth = list(state.request_rate), list(state.error_rate), list(state.queue_depth)
        self.query_one("#trend-requests", Trend).show(requests, fmt.rate(requests[-1] if requests else None))
        self.query_one("#trend-errors", Trend).show(errors, fmt.rate(errors[-1] if errors else None))
        self.query_one("#trend-queue", Trend).show(depth, f"{depth[-1]:.0f}" if depth else "-")
        self.query_one("#health-line", Static).update(self._health_line())
        table = self.query_one(RowTable)
        table.empty = state.supervisor.error or "No programs."
        table.set_rows(programs.row(p) for p in state.programs)

    def _health_line(self) -> Text:
        state = self.console.state
        line = Text("Health ")
        if not state.api.up or state.health is None:
            line.append(f"unknown: {state.api.error or 'waiting for the API'}", style="bold red")
            return line
        status = str(state.health.get("status"))
        line.append(status, style=CHECK_COLOURS.get(status, ""))
        for name, check in state.health.get("checks", {}).items():
            line.append(f"  {name} ")
            line.append(str(check.get("status")), style=CHECK_COLOURS.get(str(check.get("status")), ""))
            if check.get("latency_ms") is not None:
                line.append(f" {check['latency_ms']:.1f}ms", style="dim")
        if state.metrics_error:
            line.append(f"  (metrics: {state.metrics_error})", style="dim")
        return line
