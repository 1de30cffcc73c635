"""Operators: every operator account (disabled ones too) in one table, filtered as you type, and what one
operator does to another: create (a one-time password shown once), disable and enable, reset the password
(a new one-time password), make read-only or full again, remove (after typing the address). Each is
confirmed by the address; the API's refusals (your own account, the last full operator) are shown as it
words them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.widgets import Input, Static

from appliance.client.errors import ApiError, Unauthorized
from console import format as fmt
from console.screens.backups import moment
from console.screens.confirm import ConfirmDialog
from console.screens.message import MessageDialog
from console.screens.operator_form import NewOperator, OperatorForm
from console.screens.table_view import TableScreen
from console.screens.typed_confirm import TypedConfirmDialog
from console.widgets.row_table import Column, RowTable

Operator = dict[str, Any]
SIGN_IN = "Sign in (ctrl+l) to see the operators."
COLUMNS = (
    Column("E-mail"),
    Column("Name", 12),
    Column("Access", 9, colours={"read-only": "yellow", "full": "green"}),
    Column("MFA", 3),
    Column("Status", 8, colours={"disabled": "bold red", "active": "green"}),
    Column("Password", 8, colours={"one-time": "yellow"}),
    Column("Signed in", 9, "right"),
)


def operator_row(operator: Operator, now: float, me: str | None) -> tuple[str, tuple[str, ...]]:
    email = str(operator["email"])
    last = moment(operator.get("last_login_at"))
    return str(operator["id"]), (
        f"{email} (you)" if me and email.lower() == me.lower() else email,
        str(operator.get("display_name") or ""),
        "read-only" if operator.get("read_only") else "full",
        "on" if operator.get("mfa_enabled") else "-",
        "disabled" if operator.get("disabled") else "active",
        "one-time" if operator.get("must_change_password") else "-",
        "never" if last is None else f"{since(now - last)} ago",
    )


def since(seconds: float) -> str:
    """An age in at most five cells: 4m12s, 2h05m, 12d (days only past one: the rest is in the detail)."""
    return fmt.duration(seconds) if seconds < 86400 else f"{int(seconds // 86400)}d"


def one_time_password(email: str, password: str, why: str) -> MessageDialog:
    return MessageDialog(
        f"One-time password of {email}",
        f"{why} {email} signs in with this one-time password (shown once):\n\n  {password}\n\n"
        "and is asked to choose their own.",
    )


class OperatorsScreen(TableScreen):
    NAME = "operators"
    FILTER = "operator-filter"
    ROW = "operator"
    RELOAD_S = 30.0
    SIGN_IN = SIGN_IN
    TITLE = "Operators"
    AUTO_FOCUS = "#operator-table"
    DEFAULT_CSS = """
    OperatorsScreen #operator-filter { height: 3; }
    OperatorsScreen #operator-summary { height: 1; padding: 0 1; color: $text-muted; }
    OperatorsScreen #operator-detail { height: 4; border-top: solid $panel; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.operators: dict[str, Operator] = {}
        self.clock: Callable[[], float] = time.time  # what sign-in ages are drawn against
        # Held, not queried: a worker that ends as the console quits draws on widgets already removed.
        self.table = RowTable(COLUMNS, id="operator-table", empty="No operators loaded yet.")
        self._summary = Static("", id="operator-summary")
        self._detail = Static("", id="operator-detail")

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter: words in address, name, access or status", id="operator-filter")
        yield self._summary
        yield self.table
        yield self._detail

    def on_mount(self) -> None:
        self.query_one("#operator-filter", Input).display = False  # shown by `/`
        self.keep_loaded()
        self.table.focus()

    @property
    def summary(self) -> str:
        return str(self._summary.content)

    def polled(self) -> None:
        super().polled()
        if not self.console.signed_in_as and (self.operators or self.summary != SIGN_IN):
            self.operators = {}  # signed out: what the session saw goes with it
            self.draw()
            self._summary.update(SIGN_IN)

    # --- loading ------------------------------------------------------------------------------------

    def say(self, text: str | Text) -> None:
        self._summary.update(text)

    @work(exclusive=True, group="operators-load")
    async def load(self, select: str | None = None) -> None:
        fresh: dict[str, Operator] = {}
        try:
            async for page in self.console.connection.api.operator_pages():
                fresh.update((str(o["id"]), o) for o in page)
        except Unauthorized as exc:
            self.console.session_ended(exc)
            return
        except ApiError as exc:  # shown; the rows listed before stay
            self._summary.update(Text(f"Could not list the operators: {exc.message}", "bold red"))
            return
        self.operators = fresh
        self.draw()
        if select:
            self.table.move_to(select)

    def draw(self) -> None:
        now, me = self.clock(), self.console.signed_in_as
        self.table.set_rows(operator_row(o, now, me) for o in self.operators.values())
        listed = self.operators.values()
        disabled = sum(1 for o in listed if o.get("disabled"))
        reading = sum(1 for o in listed if o.get("read_only"))
        count = len(self.operators)
        noun = "operator" if count == 1 else "operators"
        self._summary.update(f"{count} {noun} · {reading} read-only · {disabled} disabled")
        self.show_detail()

    # --- filter ---------------------------------------------------------------------------------------

    # --- detail ---------------------------------------------------------------------------------------

    def selected(self) -> Operator | None:
        key = self.table.cursor_key
        return self.operators.get(key) if key else None

    @on(RowTable.Highlighted, "#operator-table")
    def show_detail(self) -> None:
        operator = self.selected()
        if operator is None:
            self._detail.update("")
            return
        line = Text(f"{operator['email']}", "bold")
        line.append(
            f" · {operator.get('display_name') or '-'} · created {fmt.when(operator.get('created_at'))}"
        )
        line.append(f" · last sign-in {fmt.when(operator.get('last_login_at'))}\n")
        line.append("Permissions: ", "bold")
        line.append(", ".join(operator.get("permissions") or ()) or "none")
        self._detail.update(line)

    def _changed(self, operator: Operator) -> None:
        key = str(operator["id"])
        self.operators[key] = {**self.operators.get(key, {}), **operator}
        self.draw()

    # --- actions (gated by check_action in the base screen; the API refuses too) ---------------------

    def _target(self) -> Operator | None:
        operator = self.selected()
        if operator is None:
            self.notify("Select an operator first.", severity="warning")
        return operator

    async def _confirmed(
        self,
        title: str,
        question: str,
        button: str,
        call: Callable[[str], Awaitable[Operator]],
        *,
        danger: bool = False,
    ) -> Operator | None:
        """Ask (`title` names the operator: `{email}`), then act; the operator as the API answered, or
        None when it was not done (the API's refusal shown as it words it)."""
        operator = self._target()
        if operator is None:
            return None
        email = str(operator["email"])
        dialog = ConfirmDialog(title.format(email=email), question, button, danger)
        if not await self.app.push_screen_wait(dialog):
            return None
        result = await self.attempt(f"{button.lower()} {email}", call(str(operator["id"])))
        if result is not None:
            self._changed(result)
        return result

    @work(group="operator-action")
    async def action_create(self) -> None:
        values: NewOperator | None = await self.app.push_screen_wait(OperatorForm())
        if values is None:
            return
        api = self.console.connection.api
        created = await self.attempt(
            f"create {values.email}", api.create_operator(values.email, values.display_name, values.read_only)
        )
        if created is None:
            return
        password = str(created.pop("one_time_password", ""))
        self.notify(
            f"Operator {created['email']} created ({'read-only' if created['read_only'] else 'full'})."
        )
        self._changed(created)
        self.table.move_to(str(created["id"]))
        await self.app.push_screen_wait(one_time_password(created["email"], password, "Created."))

    @work(group="operator-action")
    async def action_disable(self) -> None:
        done = await self._confirmed(
            "Disable operator {email}?",
            "They sign in nowhere and their sessions end at once, until an operator enables them again.",
            "Disable",
            self.console.connection.api.disable_operator,
            danger=True,
        )
        if done is not None:
            self.notify(f"Operator {done['email']} is disabled.")

    @work(group="operator-action")
    async def action_enable(self) -> None:
        done = await self._confirmed(
            "Enable operator {email}?",
            "They can sign in again, with the password they had.",
            "Enable",
            self.console.connection.api.enable_operator,
        )
        if done is not None:
            self.notify(f"Operator {done['email']} can sign in again.")

    @work(group="operator-action")
    async def action_reset_password(self) -> None:
        done = await self._confirmed(
            "Reset the password of {email}?",
            "Their password stops working and their sessions end; a new one-time password is shown once, "
            "to be changed at their next sign-in.",
            "Reset",
            self.console.connection.api.reset_operator_password,
            danger=True,
        )
        if done is not None:
            password = str(done.pop("one_time_password", ""))
            await self.app.push_screen_wait(one_time_password(done["email"], password, "Password reset."))

    @work(group="operator-action")
    async def action_toggle_read_only(self) -> None:
        operator = self.selected()
        read_only = not (operator or {}).get("read_only")
        api = self.console.connection.api

        def change(operator_id: str) -> Awaitable[Operator]:
            return api.set_operator_read_only(operator_id, read_only)

        ending = " Their sessions end, so the change holds at once."
        if read_only:
            done = await self._confirmed(
                "Make operator {email} read-only?",
                "They keep the read permissions only: they see everything and change nothing." + ending,
                "Make read-only",
                change,
            )
        else:
            done = await self._confirmed(
                "Give operator {email} full rights?",
                "They get every platform permission: tenants, jobs, backups, operators." + ending,
                "Give full rights",
                change,
                danger=True,
            )
        if done is not None:
            self.notify(f"Operator {done['email']} is {'read-only' if done['read_only'] else 'full'} now.")

    @work(group="operator-action")
    async def action_remove(self) -> None:
        operator = self._target()
        if operator is None:
            return
        email = str(operator["email"])
        dialog = TypedConfirmDialog(
            f"Remove operator {email}?",
            "Their sessions end at once and they are no operator any more; the audit trail still names them.",
            expected=email,
            confirm="Remove",
        )
        if not await self.app.push_screen_wait(dialog):
            return
        api = self.console.connection.api
        if await self.attempt(f"remove {email}", self._remove(api.remove_operator, str(operator["id"]))):
            self.notify(f"Operator {email} removed.")
            self.operators.pop(str(operator["id"]), None)
            self.draw()

    @staticmethod
    async def _remove(call: Callable[[str], Awaitable[None]], operator_id: str) -> bool:
        await call(operator_id)
        return True
