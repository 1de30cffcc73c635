"""Webhooks: every tenant's webhook endpoints (whether they are on, and why not; their success rate and
attempts over 24 hours; since when they fail), filtered as you type, and the selected endpoint's delivery
log below it (tab moves between the two). The operator's actions, each confirmed by name: send the selected
delivery's message again (p), send again everything that failed since a time (P), turn a disabled endpoint
on again (e). Deliveries are the API's workers' work: the log is read again shortly after an action, so the
attempt it caused shows."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, NotFound, Unauthorized
from console import format as fmt
from console.screens.audit_query import rfc3339
from console.screens.confirm import ConfirmDialog
from console.screens.since_dialog import SinceDialog
from console.screens.table_view import TableScreen
from console.screens.webhook_rows import (
    ENDPOINT_COLUMNS,
    LOG_COLUMNS,
    Attempt,
    Endpoint,
    attempt_line,
    attempt_row,
    endpoint_heading,
    endpoint_row,
)
from console.widgets.row_table import RowTable

SHOW_EVERY_S = 0.25  # while the first load streams in: drawing after every page would double its time
LOG_AGAIN_S = 2.0  # after an action: the worker's attempt is usually recorded by then
ATTEMPTS_SHOWN = 100
SIGN_IN = "Sign in (ctrl+l) to see the webhook endpoints."


class WebhooksScreen(TableScreen):
    NAME = "webhooks"
    FILTER = "hook-filter"
    ROW = "endpoint"
    SIGN_IN = SIGN_IN
    TITLE = "Webhooks"
    AUTO_FOCUS = "#hook-table"
    DEFAULT_CSS = """
    WebhooksScreen #hook-summary { height: 1; padding: 0 1; color: $text-muted; }
    WebhooksScreen #hook-filter { height: 3; }
    WebhooksScreen #hook-table { height: 1fr; min-height: 4; }
    WebhooksScreen #hook-heading { height: 3; border-top: solid $panel; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis; }
    WebhooksScreen #hook-log { height: 1fr; min-height: 4; }
    WebhooksScreen #hook-attempt { height: 2; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: dict[str, Endpoint] = {}
        self.attempts: dict[str, Attempt] = {}
        self.log_of: str | None = None  # the endpoint whose log is shown
        self.loaded_at: float | None = None
        self.clock: Callable[[], float] = time.time  # what ages are drawn against
        self._log_timer: Timer | None = None
        self._loading = False
        # Held, not queried: a worker that ends as the console quits draws on widgets already removed.
        self.summary = Static("", id="hook-summary")
        self.table = RowTable(ENDPOINT_COLUMNS, id="hook-table", empty="No endpoints loaded yet.")
        self.heading = Static("", id="hook-heading")
        self.deliveries = RowTable(LOG_COLUMNS, id="hook-log", empty="No delivery to this endpoint yet.")
        self.attempt_pane = Static("", id="hook-attempt")

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter: words in tenant, URL or state", id="hook-filter", classes="hidden")
        yield self.summary
        yield self.table
        yield self.heading
        yield self.deliveries
        yield self.attempt_pane

    def on_mount(self) -> None:
        self.keep_loaded()
        self.table.focus()

    # --- loading ------------------------------------------------------------------------------------

    def say(self, text: str | Text) -> None:
        self.summary.update(text)

    @work(exclusive=True, group="webhooks-load")
    async def load(self) -> None:
        self._loading = True
        fresh: dict[str, Endpoint] = {}
        waiting: list[Endpoint] = []  # fetched, not yet in the table
        shown_at = 0.0
        try:
            async for page in self.console.connection.api.platform_endpoint_pages():
                for endpoint in page:
                    fresh[str(endpoint["id"])] = endpoint
                if self.loaded_at:
                    continue  # a reload swaps the rows in place once all are here
                waiting.extend(page)
                now = time.perf_counter()
                if now - shown_at >= SHOW_EVERY_S:  # the first rows at once, then a few redraws a second
                    self.table.append_rows(endpoint_row(e, self.clock()) for e in waiting)
                    waiting.clear()
                    self.summary.update(f"Loading… {len(fresh)} endpoints")
                    shown_at = now
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # shown; the rows loaded before stay
            self.summary.update(Text(f"Could not load the endpoints: {exc.message}", style="bold red"))
            return
        finally:
            self._loading = False
        first = self.loaded_at is None
        self.show_endpoints(fresh)
        if first:  # the rows came as the pages did: now per tenant, the cursor on the first
            self.table.action_edge(0)
        self.loaded_at = time.time()
        self.show_log()

    def show_endpoints(self, endpoints: dict[str, Endpoint]) -> None:
        """The rows, per tenant, and the counts of those off and failing."""
        self.endpoints = endpoints
        now = self.clock()
        rows = sorted(endpoints.values(), key=lambda e: (str(e.get("tenant_slug")), str(e.get("url"))))
        self.table.empty = "No tenant has a webhook endpoint yet."
        self.table.set_rows(endpoint_row(e, now) for e in rows)
        disabled = sum(1 for e in endpoints.values() if not e.get("enabled"))
        failing = sum(1 for e in endpoints.values() if e.get("failing_since"))
        line = Text(f"{len(endpoints)} endpoints · ")
        line.append(f"{disabled} disabled", "bold red" if disabled else "")
        line.append(" · ")
        line.append(f"{failing} failing", "yellow" if failing else "")
        self.summary.update(line)
        self.heading.update(endpoint_heading(self.selected(), now))

    # --- filter and panes ----------------------------------------------------------------------------

    def action_switch_pane(self) -> None:
        (self.table if self.focused is self.deliveries else self.deliveries).focus()

    # --- the delivery log ----------------------------------------------------------------------------

    @on(RowTable.Highlighted, "#hook-table")
    def _endpoint_highlighted(self) -> None:
        self.heading.update(endpoint_heading(self.selected(), self.clock()))
        self.show_log_soon(0.3)  # not one request per arrow press

    @on(RowTable.Highlighted, "#hook-log")
    def _attempt_highlighted(self) -> None:
        self.attempt_pane.update(attempt_line(self.selected_attempt()))

    def show_log_soon(self, delay: float) -> None:
        if self._log_timer is not None:
            self._log_timer.stop()
        self._log_timer = self.set_timer(delay, self.show_log)

    def selected(self) -> Endpoint | None:
        key = self.table.cursor_key
        return self.endpoints.get(key) if key else None

    def selected_attempt(self) -> Attempt | None:
        key = self.deliveries.cursor_key
        return self.attempts.get(key) if key else None

    @work(exclusive=True, group="webhooks-log")
    async def show_log(self) -> None:
        endpoint = self.selected()
        if endpoint is None:
            self.log_of, self.attempts = None, {}
            self.deliveries.set_rows([])
            self.attempt_pane.update(attempt_line(None))
            return
        endpoint_id = str(endpoint["id"])
        try:
            items = await self.console.connection.api.platform_endpoint_attempts(endpoint_id, ATTEMPTS_SHOWN)
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except NotFound:  # removed by its tenant meanwhile: the next load drops its row
            self.deliveries.empty = "This endpoint no longer exists."
            self.attempts = {}
            self.deliveries.set_rows([])
            return
        except ApiError as exc:
            self.deliveries.empty = f"Could not load the delivery log: {exc.message}"
            self.deliveries.set_rows([])
            return
        self.deliveries.empty = "No delivery to this endpoint yet."
        self.attempts = {str(a["id"]): a for a in items}
        self.deliveries.set_rows(attempt_row(a) for a in items)
        if self.log_of != endpoint_id:  # another endpoint: its newest attempt first
            self.log_of = endpoint_id
            self.deliveries.action_edge(0)
        self.attempt_pane.update(attempt_line(self.selected_attempt()))

    def refresh_after_action(self) -> None:
        """The endpoint's row and log now, and the log again once the worker has had time to send."""
        self.load()
        self.show_log_soon(LOG_AGAIN_S)

    # --- actions (write actions are gated by check_action in the base screen) ------------------------

    def _enabled_endpoint(self) -> Endpoint | None:
        endpoint = self.selected()
        if endpoint is None:
            self.notify("Select an endpoint first.", severity="warning")
            return None
        if not endpoint.get("enabled"):
            self.notify(
                f"{endpoint['url']} is disabled: re-enable it first (e).", severity="warning", timeout=8
            )
            return None
        return endpoint

    @work(group="webhooks-action")
    async def action_replay(self) -> None:
        endpoint = self._enabled_endpoint()
        if endpoint is None:
            return
        attempt = self.selected_attempt()
        if attempt is None or self.log_of != str(endpoint["id"]):
            self.notify("Select a delivery in the log first (tab).", severity="warning")
            return
        event, url, slug = attempt.get("event_type"), endpoint["url"], endpoint.get("tenant_slug")
        question = ConfirmDialog(
            f"Replay {event} to {url}?",
            f"Tenant {slug}: message {attempt.get('message_id')} is sent to this endpoint again, with the "
            "same webhook-id, freshly signed.",
            "Replay",
        )
        if not await self.app.push_screen_wait(question):
            return
        api = self.console.connection.api
        call = api.replay_endpoint_message(str(endpoint["id"]), str(attempt["message_id"]))
        if await self.attempt(f"replay {event} to {url}", call) is not None:
            self.notify(f"Replaying {event} to {url} ({slug}).")
            self.refresh_after_action()

    @work(group="webhooks-action")
    async def action_replay_failed(self) -> None:
        endpoint = self._enabled_endpoint()
        if endpoint is None:
            return
        url, slug = endpoint["url"], endpoint.get("tenant_slug")
        dialog = SinceDialog(
            f"Replay failed deliveries to {url}?",
            f"Tenant {slug}: every delivery to this endpoint that failed since the time below is sent again.",
            "Replay",
        )
        since = await self.app.push_screen_wait(dialog)
        if since is None:
            return
        api = self.console.connection.api
        call = api.replay_endpoint_failed(str(endpoint["id"]), rfc3339(since))
        result = await self.attempt(f"replay failed deliveries to {url}", call)
        if result is None:
            return
        count = int(result.get("replayed") or 0)
        when = fmt.when(rfc3339(since))
        if not count:
            self.notify(f"Nothing to {url} ({slug}) failed since {when}.", severity="warning")
            return
        more = " (more are left: press P again)" if result.get("more") else ""
        plural = "y" if count == 1 else "ies"
        self.notify(f"Replaying {count} failed deliver{plural} to {url} ({slug}) since {when}{more}.")
        self.refresh_after_action()

    @work(group="webhooks-action")
    async def action_enable(self) -> None:
        endpoint = self.selected()
        if endpoint is None:
            self.notify("Select an endpoint first.", severity="warning")
            return
        url, slug = endpoint["url"], endpoint.get("tenant_slug")
        if endpoint.get("enabled"):
            self.notify(f"{url} ({slug}) is enabled already.", severity="warning")
            return
        question = ConfirmDialog(
            f"Re-enable {url}?",
            f"Tenant {slug}: deliveries to this endpoint start again. It was disabled: "
            f"{endpoint.get('disabled_reason') or 'no reason recorded'}. What failed meanwhile is sent only "
            "if replayed (P).",
            "Re-enable",
        )
        if not await self.app.push_screen_wait(question):
            return
        api = self.console.connection.api
        changed = await self.attempt(f"re-enable {url}", api.set_endpoint_enabled(str(endpoint["id"]), True))
        if changed is None:
            return
        self.notify(f"{url} ({slug}) is enabled again.")
        key = str(endpoint["id"])
        self.endpoints[key] = {**endpoint, **changed}
        self.table.update_row(*endpoint_row(self.endpoints[key], self.clock()))
        self.heading.update(endpoint_heading(self.selected(), self.clock()))
        self.refresh_after_action()
