"""Health: every check the appliance reports (database, queue, worker), the API's own reachability and the
supervisor link, each with its latest status, latency and error or detail, and its recent results; below
them the doctor's findings (settings, secret files, disks, migrations, row-level security, certificate,
backups...), each with its fix.

The checks come from the app's polls (`ConsoleState`), so a dead API makes their rows say so ("unknown: API
down (…)") and never freezes the view. The doctor takes seconds: it runs in a worker when the view is first
shown (again when shown after DOCTOR_STALE_S) and on `r`, and the line under the summary says it is running.
`r` also asks for a poll now.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from appliance.client.errors import ApiError, Unauthorized
from console import format as fmt
from console.screens.base import ConsoleScreen
from console.state import HISTORY, ConsoleState, Link
from console.widgets.check_card import STATUS_COLOURS, CheckCard, CheckView
from console.widgets.doctor_findings import DoctorFindings, findings_of, tally

#: The checks of GET /health, in the order shown (a check the API adds later comes after them).
REPORTED = ("database", "queue", "disk", "worker")
SAMPLE_S = 0.25  # how often the links are looked at, to note each poll's result once
REDRAW_S = 1.0  # "retry in 4s" counts down between polls
DOCTOR_STALE_S = 60.0  # the view shown again after this long runs the doctor again


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
        self.doctor_report: dict[str, Any] | None = None
        self.doctor_at: float | None = None  # when its report came (by `clock`)
        self.doctor_note = ""  # why the last run gave no report
        self.doctor_running = False
        # Held, not queried: the doctor's worker may end as the console quits, its widgets removed.
        self._doctor_line = Static(id="doctor-line")
        self._findings = DoctorFindings(id="doctor-findings")

    def body(self) -> ComposeResult:
        yield Static(id="health-summary")
        yield self._doctor_line
        with VerticalScroll(id="health-checks"):
            for view in self.views():
                yield CheckCard(view)
            yield self._findings

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
        if not self.console.signed_in_as and self.doctor_report is not None:
            self._forget_doctor()
        self.draw()

    def draw(self) -> None:
        self.query_one("#health-summary", Static).update(summary(self.console.state, self.clock()))
        self._doctor_line.update(self.doctor_line())
        cards = self.cards()
        box = self.query_one("#health-checks", VerticalScroll)
        for view in self.views():
            card = cards.get(view.name)
            if card is not None:
                card.show(view)
            else:  # a check the API began to report: before the supervisor's card
                box.mount(CheckCard(view), before=cards["supervisor"])

    def action_refresh_now(self) -> None:
        """Ask the app to poll now (its tick starts a poll that is due and not already running), and run
        the doctor again."""
        state = self.console.state
        state.api.next_try = 0
        if state.supervisor.next_try != float("inf"):  # inf: there is no control socket to ask
            state.supervisor.next_try = 0
        self.notify("Checking now…", timeout=2)
        self.run_doctor()

    # --- the doctor -------------------------------------------------------------------------------------

    def signed_in(self) -> None:
        self.run_doctor()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.doctor_at is not None and self.clock() - self.doctor_at > DOCTOR_STALE_S:
            self.run_doctor()

    def run_doctor(self) -> None:
        if self.doctor_running:
            return
        if not self.console.signed_in_as:
            self._forget_doctor()
            return
        self.doctor_running = True
        self._doctor_line.update(self.doctor_line())
        self.doctor()

    @work(group="doctor")
    async def doctor(self) -> None:
        try:
            report = await self.console.connection.api.doctor()
        except Unauthorized as exc:
            self.doctor_note = f"could not run: {exc.message}"
            self.console.session_ended(exc)
        except ApiError as exc:  # the findings shown before stay, under this note
            self.doctor_note = f"could not run: {exc.message}"
        else:
            self.show_doctor(report)
        finally:
            self.doctor_running = False
            self._doctor_line.update(self.doctor_line())

    def show_doctor(self, report: dict[str, Any]) -> None:
        self.doctor_report, self.doctor_at, self.doctor_note = report, self.clock(), ""
        self._findings.show(findings_of(report))

    def _forget_doctor(self) -> None:
        """Signed out: the report goes with the session."""
        self.doctor_report, self.doctor_at, self.doctor_note = None, None, ""
        self._findings.clear()
        self._doctor_line.update(self.doctor_line())

    def doctor_line(self) -> Text:
        line = Text("Doctor ")
        if not self.console.signed_in_as:
            line.append("sign in (ctrl+l) to run its checks", "dim")
            return line
        report = self.doctor_report
        if report is None and self.doctor_running:
            line.append("running its checks… (a few seconds)", "italic")
            return line
        if self.doctor_note:
            line.append(self.doctor_note, "bold red")
        elif report is not None:
            line.append_text(tally(findings_of(report)))
            if self.doctor_at is not None:
                line.append(f" · checked {fmt.duration(self.clock() - self.doctor_at)} ago", "dim")
            line.append(" · findings below", "dim")
        if self.doctor_running:
            line.append(" · running again…", "italic")
        return line
