"""Apps: every tenant's monitored applications in one table, down ones and open incidents first (filtered as
you type), and the selected app's uptime over 24 hours, 7 and 30 days, the latency of its recent checks, its
last checks and its incidents. Read only: an app belongs to its tenant, who changes it through its own API.

Reloaded every RELOAD_S while shown, in place: the cursor stays on its app."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, NotFound, Unauthorized
from console import format as fmt
from console.screens.backups import moment
from console.screens.table_view import TableScreen
from console.widgets.row_table import Column, RowTable
from console.widgets.trend import Trend

App = dict[str, Any]
SHOW_EVERY_S = 0.25  # while the first load streams in: drawing after every page would double its time
CHECKS_SHOWN = 8
INCIDENTS_SHOWN = 4
SIGN_IN = "Sign in (ctrl+l) to see the monitored apps."
STATE_COLOURS = {"up": "green", "down": "bold red", "paused": "yellow", "unknown": "dim"}
COLUMNS = (
    Column("State", 7, colours=STATE_COLOURS),
    Column("Name"),
    Column("Tenant", 14),
    Column("Kind", 9),
    Column("Target"),
    Column("Since", 7, "right"),
)


def clock_time(value: str | None) -> str:
    """An RFC 3339 time as local HH:MM:SS (a check of the last minutes)."""
    at = moment(value)
    return "-" if at is None else dt.datetime.fromtimestamp(at).strftime("%H:%M:%S")


def state(app: App) -> str:
    """up, down, unknown, or paused (the tenant turned its monitoring off)."""
    return "paused" if not app.get("enabled", True) else str(app.get("status") or "unknown")


def alarming(app: App) -> bool:
    """Down, or with an incident still open (a paused app can keep one)."""
    return app.get("status") == "down" or bool(app.get("open_incident_since"))


def ordered(apps: Iterable[App]) -> list[App]:
    """Down apps and open incidents first, then the others; by tenant and name within each."""
    return sorted(
        apps, key=lambda a: (not alarming(a), str(a.get("tenant_slug")), str(a.get("name")), str(a["id"]))
    )


def app_row(app: App, now: float) -> tuple[str, tuple[str, ...]]:
    since = moment(app.get("status_changed_at") or app.get("created_at"))
    return str(app["id"]), (
        state(app),
        str(app.get("name") or "?"),
        str(app.get("tenant_slug") or "?"),
        str(app.get("kind") or "?"),
        "heartbeat" if app.get("kind") == "heartbeat" else str(app.get("url") or "-"),
        fmt.duration(None if since is None else now - since),
    )


def uptime_style(percent: float | None) -> str:
    if percent is None:
        return "dim"
    return "green" if percent >= 99 else "yellow" if percent >= 90 else "bold red"


def heading(app: App, uptime: dict[str, Any] | None, now: float) -> Text:
    """Two lines: what the app is and since when in its state; its uptime in each window."""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{app.get('name')} ", "bold")
    line.append(state(app), STATE_COLOURS.get(state(app), ""))
    since = moment(app.get("status_changed_at"))
    if since is not None:
        line.append(f" for {fmt.duration(now - since)}")
    target = app.get("url") if app.get("kind") != "heartbeat" else "heartbeat"
    line.append(f" · {app.get('tenant_slug')} · {target} · every {app.get('interval')}s\n", "dim")
    line.append("Uptime ", "bold")
    windows = (uptime or {}).get("windows") or {}
    if uptime is None:
        line.append("-", "dim")
    for name in ("24h", "7d", "30d"):
        window = windows.get(name)
        if window is None:
            continue
        percent = window.get("percent")
        line.append(f"{name} " if name == "24h" else f" · {name} ", "dim")
        line.append("-" if percent is None else f"{percent:.2f}%", uptime_style(percent))
    day = windows.get("24h") or {}
    if day.get("failures"):
        line.append(f" · {day['failures']} of {day.get('checks')} checks failed in 24h", "dim")
    return line


def checks_text(checks: list[dict[str, Any]]) -> Text:
    """The newest checks, one a line: time, ✓/✗, status, latency, error."""
    text = Text("Last checks\n", "bold", no_wrap=True, overflow="ellipsis")
    if not checks:
        text.append("none yet", "dim")
    for check in checks[:CHECKS_SHOWN]:
        ok = bool(check.get("ok"))
        latency = check.get("latency_ms")
        text.append(f"{clock_time(check.get('checked_at'))} ")
        text.append("✓" if ok else "✗", "green" if ok else "bold red")
        text.append(f" {check.get('status_code') or '-':>3} ")
        text.append(f"{'-' if latency is None else f'{latency:.0f}ms':>6}", "dim")
        if check.get("error"):
            text.append(f" {check['error']}", "red")
        text.append("\n")
    text.rstrip()
    return text


def incidents_text(incidents: list[dict[str, Any]], now: float) -> Text:
    """The open incident first (with how long it has lasted), then the newest closed ones."""
    text = Text("Incidents\n", "bold", no_wrap=True, overflow="ellipsis")
    if not incidents:
        text.append("none", "dim")
    chosen = sorted(incidents, key=lambda i: i.get("ended_at") is not None)[:INCIDENTS_SHOWN]
    for incident in chosen:
        started = moment(incident.get("started_at"))
        ended = moment(incident.get("ended_at"))
        reason = str(incident.get("reason") or "")
        if incident.get("ended_at") is None:
            lasted = fmt.duration(None if started is None else now - started)
            text.append(f"OPEN {lasted}", "bold red")
            text.append(f" since {fmt.when(incident.get('started_at'))[5:16]} {reason}\n")
        else:
            lasted = fmt.duration(None if started is None or ended is None else ended - started)
            text.append(f"{fmt.when(incident.get('started_at'))[5:16]} {lasted}", "dim")
            text.append(f" {reason}\n")
    text.rstrip()
    return text


def latencies(checks: list[dict[str, Any]]) -> list[float]:
    """The recent checks' latencies, oldest first (a check without an answer counts as 0)."""
    return [float(c.get("latency_ms") or 0.0) for c in reversed(checks)]


class AppsScreen(TableScreen):
    NAME = "apps"
    FILTER = "app-filter"
    ROW = "app"
    SIGN_IN = SIGN_IN
    TITLE = "Apps"
    AUTO_FOCUS = "#app-table"
    DEFAULT_CSS = """
    AppsScreen #app-summary { height: 1; padding: 0 1; color: $text-muted; }
    AppsScreen #app-filter { height: 3; }
    AppsScreen #app-table { min-height: 4; }
    AppsScreen #app-detail { height: 12; border-top: solid $panel; padding: 0 1; }
    AppsScreen #app-heading { height: 2; }
    AppsScreen #app-checks { width: 1fr; height: 1fr; margin-right: 1; }
    AppsScreen #app-side { width: 1fr; height: 1fr; }
    AppsScreen #app-incidents { height: 1fr; }
    AppsScreen #app-detail Static { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[str, App] = {}
        self.loaded_at: float | None = None
        self.clock: Callable[[], float] = time.time  # what ages are drawn against
        self._detail_timer: Timer | None = None
        self._loading = False
        # Held, not queried: a worker that ends as the console quits draws on widgets already removed.
        self.summary = Static("", id="app-summary")
        self.table = RowTable(COLUMNS, id="app-table", empty="No apps loaded yet.")
        self.heading = Static("", id="app-heading")
        self.checks = Static("", id="app-checks")
        self.latency = Trend("Latency", id="app-latency")
        self.incidents = Static("", id="app-incidents")

    def body(self) -> ComposeResult:
        yield Input(
            placeholder="filter: words in state, name, tenant, kind or target",
            id="app-filter",
            classes="hidden",
        )
        yield self.summary
        yield self.table
        with Vertical(id="app-detail"):
            yield self.heading
            with Horizontal():
                yield self.checks
                with Vertical(id="app-side"):
                    yield self.latency
                    yield self.incidents

    def on_mount(self) -> None:
        self.keep_loaded()
        self.table.focus()

    # --- loading ------------------------------------------------------------------------------------

    def say(self, text: str | Text) -> None:
        self.summary.update(text)

    @work(exclusive=True, group="apps-load")
    async def load(self) -> None:
        self._loading = True
        started = time.perf_counter()
        fresh: dict[str, App] = {}
        waiting: list[App] = []  # fetched, not yet in the table
        shown_at = 0.0
        try:
            async for page in self.console.connection.api.platform_app_pages():
                for app in page:
                    fresh[str(app["id"])] = app
                if self.loaded_at:
                    continue  # a reload swaps the rows in place once all are here
                waiting.extend(page)
                now = time.perf_counter()
                if now - shown_at >= SHOW_EVERY_S:  # the first rows at once, then a few redraws a second
                    self.table.append_rows(app_row(a, self.clock()) for a in ordered(waiting))
                    waiting.clear()
                    self.summary.update(f"Loading… {len(fresh)} apps")
                    shown_at = now
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # shown; the rows loaded before stay
            self.summary.update(Text(f"Could not load the apps: {exc.message}", style="bold red"))
            return
        finally:
            self._loading = False
        first = self.loaded_at is None
        self.apps = fresh
        self.table.empty = "No tenant monitors an app yet."
        self.draw()
        if first:  # the rows came as the pages did: now in order, the cursor on the first (a down one)
            self.table.action_edge(0)
        self.loaded_at = time.time()
        down = sum(1 for a in fresh.values() if a.get("status") == "down")
        open_ = sum(1 for a in fresh.values() if a.get("open_incident_since"))
        line = Text(f"{len(fresh)} apps · ")
        line.append(f"{down} down", "bold red" if down else "")
        line.append(f" · {open_} open incidents · loaded in {time.perf_counter() - started:.2f}s")
        self.summary.update(line)
        self.show_detail()

    def draw(self) -> None:
        now = self.clock()
        self.table.set_rows(app_row(a, now) for a in ordered(self.apps.values()))

    # --- filter ---------------------------------------------------------------------------------------

    # --- detail ---------------------------------------------------------------------------------------

    @on(RowTable.Highlighted, "#app-table")
    def _highlighted(self) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.3, self.show_detail)  # not one request per arrow press

    def selected(self) -> App | None:
        key = self.table.cursor_key
        return self.apps.get(key) if key else None

    @work(exclusive=True, group="app-detail")
    async def show_detail(self) -> None:
        app = self.selected()
        if app is None:
            self.clear_detail()
            return
        api, app_id = self.console.connection.api, str(app["id"])
        try:
            uptime = await api.platform_app_uptime(app_id)
            checks = await api.platform_app_checks(app_id, limit=60)
            incidents = await api.platform_app_incidents(app_id, limit=20)
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except NotFound:  # deleted by its tenant meanwhile: the next load drops its row
            self.clear_detail(Text(f"{app.get('name')}: no longer monitored (deleted).", "yellow"))
            return
        except ApiError as exc:
            self.clear_detail(Text(f"{app.get('name')}: could not load its detail: {exc.message}", "red"))
            return
        self.show_app(app, uptime, checks, incidents)

    def clear_detail(self, note: Text | None = None) -> None:
        """Nothing of the app shown before stays: only `note`, if any."""
        self.heading.update(note or "")
        self.checks.update("")
        self.incidents.update("")
        self.latency.show([], "-")
        self.latency.display = False  # no app, no latency: an empty box would look like a full bar

    def show_app(
        self, app: App, uptime: dict[str, Any], checks: list[dict[str, Any]], incidents: list[dict[str, Any]]
    ) -> None:
        """Draw the detail pane from what the API said of one app."""
        now = self.clock()
        self.heading.update(heading(app, uptime, now))
        self.checks.update(checks_text(checks))
        answered = [c["latency_ms"] for c in checks if c.get("latency_ms") is not None]
        latest = f"{answered[0]:.0f}ms max {max(answered):.0f}" if answered else "-"
        self.latency.display = True
        self.latency.show(latencies(checks), latest)
        self.incidents.update(incidents_text(incidents, now))
