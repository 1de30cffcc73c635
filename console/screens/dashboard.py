"""The dashboard: services at a glance, the API's health and latency, request and error rates, queue depth,
and the durable jobs that failed for good (`d` lists them in the jobs view)."""

from __future__ import annotations

from statistics import fmean

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from console import format as fmt
from console.screens.base import ConsoleScreen
from console.widgets import programs
from console.widgets.row_table import RowTable
from console.widgets.trend import Trend

__all__ = ["DashboardScreen", "Trend"]  # Trend stays importable from here, where it was first

CHECK_COLOURS = {"ok": "green", "degraded": "yellow", "down": "bold red", "unknown": "dim"}


class DashboardScreen(ConsoleScreen):
    NAME = "dashboard"
    TITLE = "Dashboard"
    DEFAULT_CSS = "DashboardScreen #jobs-line { height: 1; padding: 0 1; }"

    def body(self) -> ComposeResult:
        with Horizontal(id="trends"):
            yield Trend("Latency", id="trend-latency")
            yield Trend("Requests", id="trend-requests")
            yield Trend("5xx", id="trend-errors")
            yield Trend("Queue", id="trend-queue")
        yield Static(id="health-line")
        yield Static(id="jobs-line")
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
        jobs_line = self.query_one("#jobs-line", Static)
        jobs_line.display = bool(state.jobs)  # known from the first scrape that counted them
        jobs_line.update(self._jobs_line())
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

    def _jobs_line(self) -> Text:
        jobs = self.console.state.jobs
        dead = jobs.get("dead", 0)
        line = Text("Dead jobs: ")
        line.append(f"{dead:,}", style="bold red" if dead else "green")
        if dead:
            line.append(" · press d to list them")
        line.append(f"  (waiting {jobs.get('queued', 0):,}, running {jobs.get('running', 0):,})", style="dim")
        return line

    @work(group="dashboard-dead-jobs")
    async def action_dead_jobs(self) -> None:
        """The jobs view, showing only the dead jobs of every tenant."""
        from console.screens.jobs import JobsScreen  # imported when first shown, as the app's modes are

        await self.app.switch_mode("jobs")
        screen = self.app.screen
        if isinstance(screen, JobsScreen):
            screen.show_state("dead")
