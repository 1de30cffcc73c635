"""Tenants: every tenant in one table (filtered as you type), the selected one's organizations, users and
API keys, and the operator's actions on it, each confirmed by name."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, NotFound, Unauthorized
from console import collector
from console.screens.confirm import ConfirmDialog
from console.screens.message import MessageDialog
from console.screens.plan_dialog import PlanDialog
from console.screens.table_view import TableScreen
from console.screens.tenant_form import NewTenant, TenantForm
from console.screens.typed_confirm import TypedConfirmDialog
from console.widgets.row_table import Column, RowTable

T = TypeVar("T")
SHOW_EVERY_S = 0.25  # while the first load streams in: drawing after every page would double its time
GONE = "TENANT_NOT_FOUND"  # the API's code for a tenant that is not there (any more)
STATUS_COLOURS = {"active": "green", "suspended": "yellow", "deleted": "red"}
COLUMNS = (
    Column("Slug", 20),
    Column("Name"),
    Column("Plan", 10),
    Column("Status", 9, colours=STATUS_COLOURS),
    Column("Users", 5, "right"),
    Column("Projects", 8, "right"),
    Column("Keys", 4, "right"),
)


def tenant_row(tenant: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    counts = tenant.get("counts") or {}

    def count(name: str) -> str:
        value = counts.get(name)
        return "-" if value is None else str(value)

    return str(tenant["id"]), (
        tenant["slug"],
        tenant["name"],
        tenant["plan"],
        tenant["status"],
        count("users"),
        count("projects"),
        count("api_keys"),
    )


def entry_name(item: dict[str, Any], field: str) -> str:
    """An organization, member or key in the detail pane: its name (or id), and what else it is when it is
    not an active member or a live key ("bob@acme.test (invited)", "ci (revoked)")."""
    name = str(item.get(field) or item.get("id"))
    status = "revoked" if item.get("revoked_at") else item.get("status")
    return f"{name} ({status})" if status and status != "active" else name


class TenantsScreen(TableScreen):
    NAME = "tenants"
    FILTER = "tenant-filter"
    ROW = "tenant"
    SIGN_IN = "Sign in (ctrl+l) to see the tenants."
    TITLE = "Tenants"
    AUTO_FOCUS = "#tenant-table"

    def __init__(self) -> None:
        super().__init__()
        self.table = RowTable(COLUMNS, id="tenant-table", empty="No tenants loaded yet.")
        self.loaded_at: float | None = None
        self._detail_timer: Timer | None = None
        self._loading = False

    def body(self) -> ComposeResult:
        yield Input(
            placeholder="filter: words in slug, name, plan or status", id="tenant-filter", classes="hidden"
        )
        yield Static("", id="tenant-summary")
        yield self.table
        yield Static("", id="tenant-detail")

    def on_mount(self) -> None:
        self.keep_loaded()
        self.table.focus()

    # --- loading ------------------------------------------------------------------------------------

    def say(self, text: str | Text) -> None:
        self.query_one("#tenant-summary", Static).update(text)

    @work(exclusive=True, group="tenants-load")
    async def load(self) -> None:
        self._loading = True
        summary = self.query_one("#tenant-summary", Static)
        started = time.perf_counter()
        fresh: dict[str, dict[str, Any]] = {}
        waiting: list[dict[str, Any]] = []  # fetched, not yet in the table
        shown_at = 0.0
        try:
            async for page in self._pages():
                for tenant in page:
                    fresh[str(tenant["id"])] = tenant
                if self.loaded_at:
                    continue  # a reload swaps the rows in place once all are here
                waiting.extend(page)
                now = time.perf_counter()
                if now - shown_at >= SHOW_EVERY_S:  # the first rows at once, then a few redraws a second
                    self.table.append_rows(tenant_row(t) for t in waiting)
                    waiting.clear()
                    summary.update(f"Loading… {len(fresh)} tenants")
                    shown_at = now
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # shown; the rows loaded before stay
            summary.update(Text(f"Could not load the tenants: {exc}", style="bold red"))
            return
        finally:
            self._loading = False
        self.console.tenants = fresh
        changed = self.table.set_rows(tenant_row(t) for t in fresh.values())
        self.loaded_at = time.time()
        took = time.perf_counter() - started
        summary.update(f"{len(fresh)} tenants · loaded in {took:.2f}s · {changed} changed")
        self.show_detail()

    async def _pages(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The tenant list page by page, with no garbage collection while it streams in."""
        with collector.held():
            async for page in self.console.connection.api.tenant_pages():
                yield page

    # --- filter ---------------------------------------------------------------------------------------

    # --- detail ---------------------------------------------------------------------------------------

    @on(RowTable.Highlighted, "#tenant-table")
    def _highlighted(self) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(0.3, self.show_detail)  # not one request per arrow press

    def selected(self) -> dict[str, Any] | None:
        key = self.table.cursor_key
        return self.console.tenants.get(key) if key else None

    @work(exclusive=True, group="tenant-detail")
    async def show_detail(self) -> None:
        detail = self.query_one("#tenant-detail", Static)
        tenant = self.selected()
        if tenant is None:
            detail.update("")
            return
        api, tid = self.console.connection.api, str(tenant["id"])
        lines = Text(f"{tenant['slug']} · {tenant['name']} · {tenant['plan']} · {tenant['status']}\n", "bold")
        for part, title, field in (
            ("organizations", "Organizations", "name"),
            ("members", "Users", "email"),
            ("api-keys", "API keys", "name"),
        ):
            try:
                items = await api.tenant_part(tid, part)
            except NotFound as exc:
                if exc.code == GONE:
                    self.vanished(tenant)
                    return
                lines.append(f"{title}: ({exc})\n", "dim")
                continue
            except ApiError as exc:  # shown in place of the list
                lines.append(f"{title}: ({exc})\n", "dim")
                continue
            names = ", ".join(entry_name(i, field) for i in items[:8])
            more = f" (+{len(items) - 8})" if len(items) > 8 else ""
            lines.append(f"{title} ({len(items)}{'+' if len(items) >= 200 else ''}): ", "bold")
            lines.append(f"{names or '-'}{more}\n")
        detail.update(lines)

    def vanished(self, tenant: dict[str, Any]) -> None:
        """The tenant was removed while shown: say so and drop its row."""
        self.notify(f"Tenant {tenant['slug']} no longer exists.", severity="warning")
        self.console.tenants.pop(str(tenant["id"]), None)
        self.table.set_rows(tenant_row(t) for t in self.console.tenants.values())

    def _changed(self, tenant: dict[str, Any]) -> None:
        self.console.tenants[str(tenant["id"])] = tenant
        key, cells = tenant_row(tenant)
        if key in self.table.rows:
            self.table.update_row(key, cells)
        else:
            self.table.set_rows(tenant_row(t) for t in self.console.tenants.values())
            self.table.move_to(key)
        self.show_detail()

    # --- actions (write actions are gated by check_action in the base screen) ------------------------

    async def _unless_gone(self, tenant: dict[str, Any], call: Awaitable[T]) -> T | None:
        try:
            return await call
        except NotFound as exc:
            if exc.code != GONE:
                raise
            self.vanished(tenant)
            return None

    @work(group="tenant-action")
    async def action_create(self) -> None:
        values: NewTenant | None = await self.app.push_screen_wait(TenantForm())
        if values is None:
            return
        api = self.console.connection.api
        created = await self.attempt(
            f"create {values.slug}",
            api.create_tenant(values.slug, values.name, values.plan, values.owner_email),
        )
        if created is None:
            return
        self.notify(f"Tenant {created['slug']} created.")
        self._changed(created)
        owner = created.get("owner") or {}
        if owner.get("one_time_password"):
            await self.app.push_screen_wait(
                MessageDialog(
                    f"Owner of {created['slug']}",
                    f"{owner['email']} signs in with this one-time password (shown once):\n\n"
                    f"  {owner['one_time_password']}\n\nand is asked to change it.",
                )
            )

    async def _confirmed_action(self, verb: str, message: str, call_name: str, danger: bool = False) -> None:
        """Ask, naming the tenant by slug and by name (`message` may say `{name}`), then act."""
        tenant = self.selected()
        if tenant is None:
            self.notify("Select a tenant first.", severity="warning")
            return
        title = f"{verb.title()} tenant {tenant['slug']}?"
        question = message.format(name=tenant["name"])
        if not await self.app.push_screen_wait(ConfirmDialog(title, question, verb.title(), danger)):
            return
        api = self.console.connection.api
        call = getattr(api, call_name)(str(tenant["id"]))
        result = await self.attempt(f"{verb} {tenant['slug']}", self._unless_gone(tenant, call))
        if result is not None:
            self.notify(f"Tenant {tenant['slug']}: {result['status']}.")
            self._changed(result)

    @work(group="tenant-action")
    async def action_suspend(self) -> None:
        await self._confirmed_action(
            "suspend",
            "{name}: its users, tokens and API keys are refused until it is resumed.",
            "suspend_tenant",
            True,
        )

    @work(group="tenant-action")
    async def action_resume(self) -> None:
        await self._confirmed_action("resume", "{name}: its users and keys work again.", "resume_tenant")

    @work(group="tenant-action")
    async def action_plan(self) -> None:
        tenant = self.selected()
        if tenant is None:
            self.notify("Select a tenant first.", severity="warning")
            return
        plan = await self.app.push_screen_wait(PlanDialog(tenant["slug"], tenant["plan"]))
        if plan is None:
            return
        api = self.console.connection.api
        call = api.change_tenant(str(tenant["id"]), plan=plan)
        result = await self.attempt(f"plan of {tenant['slug']}", self._unless_gone(tenant, call))
        if result is not None:
            self.notify(f"Tenant {tenant['slug']} is on the {result['plan']} plan.")
            self._changed({**tenant, **result})

    @work(group="tenant-action")
    async def action_delete(self) -> None:
        tenant = self.selected()
        if tenant is None:
            self.notify("Select a tenant first.", severity="warning")
            return
        dialog = TypedConfirmDialog(
            f"Delete tenant {tenant['slug']}?",
            f"{tenant['name']}: access stops at once; its data is purged after 30 days unless it is resumed.",
            expected=tenant["slug"],
        )
        if not await self.app.push_screen_wait(dialog):
            return
        api = self.console.connection.api
        done = await self.attempt(
            f"delete {tenant['slug']}", self._unless_gone(tenant, self._delete(api, tenant))
        )
        if done:
            self.notify(f"Tenant {tenant['slug']} deleted (purged in 30 days unless resumed).")
            self._changed({**tenant, "status": "deleted"})

    async def _delete(self, api: Any, tenant: dict[str, Any]) -> bool:
        await api.delete_tenant(str(tenant["id"]))
        return True
