"""Health: every check the appliance reports (database, queue, worker), the API's own reachability and the
supervisor link, each with its latest status, latency and error or detail, and its recent results.

Everything comes from the app's polls (`ConsoleState`); this view calls nothing itself, so a dead API
makes its rows say so ("unknown: API down (…)") and never freezes it. `r` asks for a poll now.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from console import format as fmt
from console.screens.base import ConsoleScreen
from console.state import HISTORY, ConsoleState, Link
from console.widgets.check_card import STATUS_COLOURS, CheckCard, CheckView

#: The checks of GET /health, in the order shown (a check the API adds later comes after them).
REPORTED = ("database", "queue", "disk", "worker")
SAMPLE_S = 0.25  # how often the links are looked at, to note each poll's result once
REDRAW_S = 1.0  # "retry in 4s" counts down between polls


class LinkTrail:
    """The recent results of one link (the API, the supervisor), which the state keeps no history of.

    A poll always sets the link's next try (to now + interval, or further when it failed), so a changed
    `next_try` is a new result; 0 is a "poll now" request, not a result."""

    def __init__(self) -> None:
        self.results: deque[tuple[str, float | None]] = deque(maxlen=HISTORY)
        self._seen: float | None = None

    def note(self, link: Link) -> None:
        if link.up is None or not link.next_try or link.next_try == self._seen:
            return
        self._seen = link.next_try
        self.results.append(("ok" if link.up else "down", link.latency_ms))

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(status for status, _ in self.results)

    @property
    def latencies(self) -> tuple[float, ...]:
        return tuple(latency for _, latency in self.results if latency is not None)


def detail_text(detail: Any) -> str:
    """A check's detail as words: `backend sqlite · schema 0007`, `worker w1 · last seen 3s ago`."""
    if not isinstance(detail, dict):
        return ""
    parts = []
    for key, value in detail.items():
        if key == "last_seen_seconds_ago" and isinstance(value, int | float):
            parts.append(f"last seen {fmt.duration(value)} ago")
        elif key == "free_mb" and isinstance(value, int):
            parts.append(f"{value:,} MB free")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return " · ".join(parts)


def reported_view(name: str, state: ConsoleState) -> CheckView:
    """One check of the API's report; "unknown" (and why) while the API does not answer."""
    history = state.checks.get(name)
    results = list(history.results) if history is not None else []
    statuses = tuple(status for _, status, _, _ in results)
    latencies = tuple(latency for _, _, latency, _ in results if latency is not None)
    if state.api.up is False:
        return CheckView(name, "unknown", None, f"API down ({state.api.error})", statuses, latencies)
    check = (state.health or {}).get("checks", {}).get(name) if state.api.up else None
    if not isinstance(check, dict):
        note = "not in the latest report" if state.api.up else "waiting for the API"
        return CheckView(name, "unknown", None, note, statuses, latencies)
    status = str(check.get("status") or "unknown")
    note = str(check.get("error") or "") or detail_text(check.get("detail"))
    return CheckView(name, status, check.get("latency_ms"), note, statuses, latencies)


def api_view(state: ConsoleState, trail: LinkTrail, now: float) -> CheckView:
    link, report = state.api, state.health or {}
    statuses, latencies = trail.statuses, tuple(state.latency)
    if link.up is None:
        return CheckView("api", "unknown", None, "first poll…", statuses, latencies)
    if not link.up:
        retry = max(0.0, link.next_try - now)
        return CheckView("api", "down", None, f"{link.error}; retry in {retry:.0f}s", statuses, latencies)
    note = f"version {report.get('version', '?')} · up {fmt.duration(now - link.since)}"
    return CheckView("api", "ok", link.latency_ms, note, statuses, latencies)


def supervisor_view(state: ConsoleState, trail: LinkTrail, now: float) -> CheckView:
    link, statuses, latencies = state.supervisor, trail.statuses, trail.latencies
    if link.up is None:
        return CheckView("supervisor", "unknown", None, "first poll…", statuses, latencies)
    if not link.up:
        retry = "" if link.next_try == float("inf") else f"; retry in {max(0.0, link.next_try - now):.0f}s"
        return CheckView("supervisor", "down", None, f"{link.error}{retry}", statuses, latencies)
    running = sum(1 for p in state.programs if p.get("state") == "running")
    info = state.supervisor_info
    note = f"pid {info.get('pid', '?')} · {running}/{len(state.programs)} programs running"
    return CheckView("supervisor", "ok", link.latency_ms, note, statuses, latencies)


def summary(state: ConsoleState, now: float) -> Text:
    line = Text("Appliance ")
    if not state.api.up or state.health is None:
        why = f"API down ({state.api.error})" if state.api.up is False else "waiting for the API"
        line.append(f"unknown: {why}", "bold red" if state.api.up is False else "dim")
        return line
    status = str(state.health.get("status") or "unknown")
    line.append(status, STATUS_COLOURS.get(status, "bold"))
    checked = [h.latest[0] for h in state.checks.values() if h.latest is not None]
    if checked:
        line.append(f" · checked {fmt.duration(now - max(checked))} ago", "dim")
    line.append(f" · every {state.api.interval:g}s · r checks now", "dim")
    return line


class HealthScreen(ConsoleScreen):
    NAME = "health"
    TITLE = "Health"

    def __init__(self) -> None:
        super().__init__()
        self.api_trail, self.supervisor_trail = LinkTrail(), LinkTrail()
        self.clock: Callable[[], float] = time.time  # what ages and uptimes are drawn against

    def body(self) -> ComposeResult:
        yield Static(id="health-summary")
        with VerticalScroll(id="health-checks"):
            for view in self.views():
                yield CheckCard(view)

    def on_mount(self) -> None:
        self.set_interval(SAMPLE_S, self._note_links)  # runs while another view is shown, too
        self.set_interval(REDRAW_S, self._redraw_if_shown)

    def _note_links(self) -> None:
        self.api_trail.note(self.console.state.api)
        self.supervisor_trail.note(self.console.state.supervisor)

    def _redraw_if_shown(self) -> None:
        if self.is_current:
            self.draw()

    def views(self) -> list[CheckView]:
        state, now = self.console.state, self.clock()
        names = [*REPORTED, *sorted(set(state.checks) - set(REPORTED))]
        return [
            api_view(state, self.api_trail, now),
            *(reported_view(name, state) for name in names),
            supervisor_view(state, self.supervisor_trail, now),
        ]

    def cards(self) -> dict[str, CheckCard]:
        return {card.view.name: card for card in self.query(CheckCard)}

    def polled(self) -> None:
        super().polled()
        self._note_links()
        self.draw()

    def draw(self) -> None:
        self.query_one("#health-summary", Static).update(summary(self.console.state, self.clock()))
        cards = self.cards()
        box = self.query_one("#health-checks", VerticalScroll)
        for view in self.views():
            card = cards.get(view.name)
            if card is not None:
                card.show(view)
            else:  # a check the API began to report: before the supervisor's card
                box.mount(CheckCard(view), before=cards["supervisor"])

    def action_refresh_now(self) -> None:
        """Ask the app to poll now: its tick starts a poll that is due (and not already running)."""
        state = self.console.state
        state.api.next_try = 0
        if state.supervisor.next_try != float("inf"):  # inf: there is no control socket to ask
            state.supervisor.next_try = 0
        self.notify("Checking now…", timeout=2)
