"""Audit: the platform's audit trail (tenant lifecycle, operator sign-ins, failed sign-ins), newest first,
filtered as you type (`/`) or queried on the server (`a`: action or prefix, actor, since, until), with the
whole selected record beside the table; the next page loads when the cursor reaches the last row."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.json import JSON
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, Forbidden, Unauthorized
from console import format as fmt
from console.screens.audit_query import AuditQuery, AuditQueryDialog
from console.screens.table_view import TableScreen
from console.widgets.row_table import Column, RowTable

Record = dict[str, Any]
PAGE = 100
SIGN_IN = "Sign in (ctrl+l) to see the audit trail."
#: The end of an action's name that says it did not go through (auth.login_failed, auth.refresh_reused).
OUTCOMES = ("failed", "reused", "denied", "refused", "locked")
COLUMNS = (  # fits 80 columns; the year, whole ids and the rest are in the detail pane
    Column("Time", 14),
    Column("Actor", 16),
    Column("Action", 22),
    Column("Resource"),
    Column("IP / outcome", 16),
)


def short(value: object) -> str:
    """A UUID's first 8 characters (enough to tell records apart on screen); other ids as they are."""
    text = str(value)
    return text[:8] if len(text) == 36 and text.count("-") == 4 else text


def stamp(value: str | None) -> str:
    """`MM-DD HH:MM:SS` in local time (the year is in the detail pane)."""
    full = fmt.when(value)
    return full[5:] if len(full) == 19 else full


def actor(record: Record) -> str:
    """Who acted, as the API names them (`actor_label`: an e-mail, `key <name> (<prefix>)`,
    `cli:<OS user>@<host>`); by id where it does not (an account or key since removed)."""
    if record.get("actor_label"):
        return str(record["actor_label"])
    if record.get("actor_user_id"):
        return f"user {short(record['actor_user_id'])}"
    if record.get("actor_api_key_id"):
        return f"key {short(record['actor_api_key_id'])}"
    summary = record.get("summary") or {}
    return str(summary.get("email") or "system")  # a failed sign-in has no actor, only the e-mail tried


def resource(record: Record) -> str:
    kind, ident = record.get("resource_type"), record.get("resource_id")
    if not kind and not ident:
        return "-"
    summary = record.get("summary") or {}
    name = summary.get("slug") or summary.get("email") or summary.get("name")
    return f"{kind or '?'} {name or short(ident or '')}".strip()  # the id is in the detail pane


def origin(record: Record) -> str:
    ip = str(record.get("ip") or "-")
    ending = str(record.get("action", "")).rsplit("_", 1)[-1]
    return f"{ip} · {ending}" if ending in OUTCOMES else ip


def audit_row(record: Record) -> tuple[str, tuple[str, ...]]:
    return str(record["id"]), (
        stamp(record.get("created_at")),
        actor(record),
        str(record.get("action", "")),
        resource(record),
        origin(record),
    )


class AuditScreen(TableScreen):
    NAME = "audit"
    FILTER = "audit-filter"
    ROW = "record"
    TITLE = "Audit"

    def __init__(self) -> None:
        super().__init__()
        self.table = RowTable(COLUMNS, id="audit-table", empty="No records loaded yet.")
        self.audit_query = AuditQuery()
        self.records: dict[str, Record] = {}
        self.next_cursor: str | None = None
        self.note = ""  # the last load's error, shown instead of the summary
        self._params: dict[str, str] = {}  # the last load's, so that every page has the same `since`
        self._load_id = 0
        self._loading_more = False

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter: words in time, actor, action, resource or ip", id="audit-filter")
        yield Static("", id="audit-summary")
        yield self.table
        with VerticalScroll(id="audit-detail"):
            yield Static("", id="audit-record")

    def on_mount(self) -> None:
        self.table.focus()

    @property
    def summary(self) -> str:
        """The line above the table, as plain text."""
        return str(self.query_one("#audit-summary", Static).content)

    def say(self, text: str | Text) -> None:
        self.query_one("#audit-summary", Static).update(text)

    def signed_in(self) -> None:
        self.action_reload_rows()

    def polled(self) -> None:
        super().polled()
        if not self.console.signed_in_as and (self.records or self.summary != SIGN_IN):
            self._forget()  # signed out: the operator's records go with the session
            self.say(SIGN_IN)

    def _forget(self) -> None:
        self._load_id += 1  # a load still running is not shown
        self.records, self.next_cursor = {}, None
        self.table.set_rows([])
        self.show_detail()

    # --- loading ------------------------------------------------------------------------------------

    def action_reload_rows(self) -> None:
        if not self.console.signed_in_as:
            self.say(SIGN_IN)
            return
        self.load()

    @work(exclusive=True, group="audit-load")
    async def load(self) -> None:
        self.workers.cancel_group(self, "audit-more")
        self._load_id += 1
        load_id, self._loading_more = self._load_id, False
        self.say(f"Loading… ({self.audit_query.describe()})")
        try:
            params = self.audit_query.params(dt.datetime.now(dt.UTC))
        except ValueError as exc:  # checked in the dialog; an age can still reach past year 1
            self.say(Text(str(exc), "bold red"))
            return
        page = await self._page(params, None)
        if page is None or load_id != self._load_id:
            return
        items, self.next_cursor = page
        self._params, self.note = params, ""
        self.records = {str(r["id"]): r for r in items}
        self.table.set_rows(audit_row(r) for r in items)
        self._summarise()
        self.show_detail()

    @work(group="audit-more")  # not exclusive: a second request must not cancel the page on its way
    async def load_more(self) -> None:
        cursor, load_id = self.next_cursor, self._load_id
        if cursor is None or self._loading_more:
            return
        self._loading_more = True
        self.say(f"{len(self.records)} records · loading more…")
        try:
            page = await self._page(self._params, cursor)
        finally:
            self._loading_more = False
        if page is None or load_id != self._load_id:
            return
        items, self.next_cursor = page
        for record in items:
            self.records[str(record["id"])] = record
        self.table.set_rows(audit_row(r) for r in self.records.values())
        self._summarise()

    async def _page(
        self, params: dict[str, str], cursor: str | None
    ) -> tuple[list[Record], str | None] | None:
        """One page, or None (and the reason on screen) when the API refused or did not answer."""
        try:
            return await self.console.connection.api.platform_audit_page(params, cursor, PAGE)
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return None
        except Forbidden as exc:  # the role may not read the trail: the API says why
            self._forget()
            self.note = exc.message
        except ApiError as exc:  # the rows loaded before stay
            self.note = f"Could not load the audit trail: {exc.message}"
        self.say(Text(self.note, "bold red"))
        return None

    def _summarise(self) -> None:
        count = f"{len(self.records)}{'+' if self.next_cursor else ''} records"
        more = " · the last row loads more" if self.next_cursor else ""
        self.say(f"{count} · {self.audit_query.describe()} · newest first{more}")

    # --- query ----------------------------------------------------------------------------------------

    @work(group="audit-query")
    async def action_query(self) -> None:
        query = await self.app.push_screen_wait(AuditQueryDialog(self.audit_query))
        if query is None:
            return
        if query != self.audit_query:
            self.audit_query = query
            self._forget()  # rows of the old filters are not answers to the new ones
        self.action_reload_rows()

    # --- local filter ---------------------------------------------------------------------------------

    # --- detail ---------------------------------------------------------------------------------------

    @on(RowTable.Highlighted, "#audit-table")
    def _highlighted(self, event: RowTable.Highlighted) -> None:
        self.show_detail()
        shown = self.table.shown
        if event.key is not None and shown and event.key == shown[-1] and self.next_cursor:
            self.load_more()

    def show_detail(self) -> None:
        key = self.table.cursor_key
        record = self.records.get(key) if key else None
        detail = self.query_one("#audit-record", Static)
        if record is None:
            detail.update("")
            return
        detail.update(JSON.from_data(record, indent=2))
