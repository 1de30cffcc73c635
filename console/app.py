"""The ops console (`appliance console`): tenants, services, health, logs, the audit trail and the backups
of one appliance, through `appliance.client` only (its web API over HTTP, its supervisor over the control
socket).

Every call runs in a worker on the event loop, so quitting is instant and a slow or dead API never freezes
the screen; each link (API, supervisor) is polled on its own, never twice at once, backing off while down.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import BindingType
from textual.screen import Screen

from appliance.client.errors import ApiError, Unauthorized
from appliance.client.supervisor import SupervisorError, SupervisorUnavailable
from console import commands
from console.connection import WRITE_PERMISSION, Connection
from console.host import ConsoleHost
from console.palette import ConsoleCommands
from console.screens.base import ConsoleScreen
from console.screens.dashboard import DashboardScreen
from console.screens.login import LoginScreen
from console.state import ConsoleState

TICK_S = 0.25


def lazy_screen(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A mode's screen, imported on first use."""

    def make() -> Screen[Any]:
        screen: Screen[Any] = getattr(importlib.import_module(module), name)()
        return screen

    make.__qualname__ = name
    return make


class ConsoleApp(App[None]):
    """One console, connected to one target."""

    CSS_PATH = "app.tcss"
    TITLE = "Forge Appliance"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS: ClassVar[set[Any]] = {ConsoleCommands}
    BINDINGS: ClassVar[list[BindingType]] = [*commands.bindings(commands.GLOBAL)]
    # The dashboard comes first; the other views are imported when first shown (a faster start).
    MODES: ClassVar[dict[str, Any]] = {
        "dashboard": DashboardScreen,
        "tenants": lazy_screen("console.screens.tenants", "TenantsScreen"),
        "services": lazy_screen("console.screens.services", "ServicesScreen"),
        "logs": lazy_screen("console.screens.logs", "LogsScreen"),
        "health": lazy_screen("console.screens.health", "HealthScreen"),
        "audit": lazy_screen("console.screens.audit", "AuditScreen"),
        "backups": lazy_screen("console.screens.backups", "BackupsScreen"),
        "jobs": lazy_screen("console.screens.jobs", "JobsScreen"),
        "apps": lazy_screen("console.screens.apps", "AppsScreen"),
        "webhooks": lazy_screen("console.screens.webhooks", "WebhooksScreen"),
        "operators": lazy_screen("console.screens.operators", "OperatorsScreen"),
    }

    def __init__(
        self,
        connection: Connection,
        *,
        read_only: bool = False,
        refresh: float = 2.0,
        first_view: str = "dashboard",
        sign_in: bool = True,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.forced_read_only = read_only or connection.target.read_only
        self.permissions: frozenset[str] | None = None
        self.signed_in_as: str | None = None
        self.state = ConsoleState()
        self.state.api.interval = self.state.supervisor.interval = refresh
        self.refresh_interval = refresh
        self.first_view = first_view
        self.ask_sign_in = sign_in
        self.tenants: dict[str, dict[str, Any]] = {}
        self.session_generation = 0  # counts sign-ins: a view reloads its data when it changes
        self._busy: set[str] = set()

    # --- read-only: the one gate --------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """Forced (--read-only, the target's setting), or an operator without write rights."""
        if self.forced_read_only:
            return True
        return self.permissions is not None and WRITE_PERMISSION not in self.permissions

    def allows(self, screen: str, action: str) -> bool:
        return not (self.read_only and commands.writes(screen, action))

    def refuse_if_read_only(self, screen: str, action: str) -> bool:
        """True (and a message) when `action` may not run now."""
        if self.allows(screen, action):
            return False
        self.notify(f"Read-only: {action.replace('_', ' ')} is not allowed here.", severity="warning")
        return True

    # --- lifecycle ----------------------------------------------------------------------------------

    async def on_mount(self) -> None:
        await self.switch_mode(self.first_view)
        self.set_interval(TICK_S, self.tick)
        self.tick()
        if self.connection.api.signed_in:
            self.check_session()
        elif self.ask_sign_in:
            self.action_sign_in()

    async def on_unmount(self) -> None:
        await self.connection.api.aclose()

    def tick(self) -> None:
        """Start each link's poll when it is due and the last one has finished."""
        now = time.time()
        if "api" not in self._busy and self.state.api.due(now):
            self._busy.add("api")
            self.poll_api()
        if "supervisor" not in self._busy and self.state.supervisor.due(now):
            self._busy.add("supervisor")
            self.poll_supervisor()

    def redraw(self) -> None:
        """Let the view on top draw the new state (not before it is mounted, nor after the app ended)."""
        if not self.is_running or not self.screen_stack:
            return
        screen = self.screen
        if isinstance(screen, ConsoleScreen) and screen.is_mounted:
            screen.polled()

    @work(group="poll-api")
    async def poll_api(self) -> None:
        state, api = self.state, self.connection.api
        try:
            report, latency = await api.health()
            now = time.time()
            state.record_health(now, report, latency)
            state.api.ok(now, latency)
            try:
                state.record_metrics(time.time(), await api.metrics())
            except ApiError as exc:
                state.metrics_error = exc.message
        except ApiError as exc:
            state.api.failed(time.time(), exc.message)
        finally:
            self._busy.discard("api")
            self.redraw()

    @work(group="poll-supervisor")
    async def poll_supervisor(self) -> None:
        state, client = self.state, self.connection.supervisor
        try:
            if client is None:
                state.supervisor.failed(time.time(), "not on this machine (the target has no control socket)")
                state.supervisor.next_try = float("inf")
                return
            started = time.perf_counter()
            status = await client.status(usage=True)
            now = time.time()
            state.record_programs(now, dict(status))
            state.supervisor.ok(now, (time.perf_counter() - started) * 1000)
        except (SupervisorUnavailable, SupervisorError) as exc:
            state.supervisor.failed(time.time(), str(exc))
        finally:
            self._busy.discard("supervisor")
            self.redraw()

    # --- session --------------------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str, code: str | None) -> None:
        answer = await self.connection.api.login(email, password, code)
        self.permissions = frozenset(answer.get("permissions") or ())
        self.signed_in_as = email
        self.after_sign_in()
        if self.connection.api.store_problem:
            self.notify(self.connection.api.store_problem, severity="warning", timeout=10)
        if answer.get("must_change_password"):
            from console.screens.password import PasswordScreen

            self.call_after_refresh(self.push_screen, PasswordScreen(password))

    def after_sign_in(self) -> None:
        self.session_generation += 1
        self.redraw()

    @work(group="session")
    async def check_session(self) -> None:
        try:
            me = await self.connection.api.me()
        except Unauthorized as exc:
            self.push_screen(LoginScreen(f"The saved session ended: {exc.message}"))
            return
        except ApiError as exc:
            self.notify(f"Could not check the saved session: {exc.message}", severity="warning")
            return
        user = me.get("user") or {}
        if user.get("must_change_password"):
            # The saved session cannot do anything else, and changing the password needs the current one.
            email = str(user.get("email") or "")
            self.push_screen(
                LoginScreen("This account must change its password: sign in to choose one.", email)
            )
            return
        self.permissions = frozenset(me.get("permissions") or ())
        self.signed_in_as = str(user.get("email") or self.connection.api.credential_email or "")
        self.after_sign_in()

    def action_sign_in(self) -> None:
        email = self.connection.api.credential_email or ""
        self.push_screen(LoginScreen(email=email))

    @work(group="session")
    async def action_sign_out(self) -> None:
        await self.connection.api.logout()
        self.permissions, self.signed_in_as = None, None
        self.notify("Signed out; the saved token is forgotten.")
        self.redraw()

    def session_ended(self, error: Unauthorized) -> None:
        """A call was refused for want of a session: ask to sign in again."""
        self.permissions, self.signed_in_as = None, None
        if not isinstance(self.screen, LoginScreen):
            self.push_screen(LoginScreen(f"Sign in again: {error.message}"))

    # --- navigation -----------------------------------------------------------------------------------

    def action_show(self, view: str) -> None:
        if view in self.MODES and self.current_mode != view:
            self.switch_mode(view)

    def action_keys(self) -> None:
        from console.screens.keys import KeysScreen

        self.push_screen(KeysScreen())

    def run_command(self, command: commands.Command) -> None:
        """Run a command of the table from the palette: global ones here, a view's on that view."""
        if self.refuse_if_read_only(command.screen, command.action):
            return
        if command.screen == commands.GLOBAL:
            self.call_later(self.run_action, command.action)
            return
        self.action_show(command.screen)
        self.call_after_refresh(self.screen.run_action, command.action)

    def jump(self, view: str, key: str) -> None:
        self.action_show(view)

        def go() -> None:
            screen = self.screen
            if isinstance(screen, ConsoleScreen):
                screen.jump(key)

        self.call_after_refresh(go)

    def program_names(self) -> list[str]:
        return sorted({str(p["name"]) for p in self.state.programs})


def _satisfies_host(app: ConsoleApp) -> ConsoleHost:
    """Never called: mypy checks here that the app offers what its screens ask of it (console.host)."""
    return app
