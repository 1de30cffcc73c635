"""The operators view against a real appliance: an operator created in the view signs in over HTTP with the
one-time password it showed once; disabled, they cannot sign in, enabled again they can; a password reset
gives a new one-time password and the old one stops working; removed after the address is typed (a wrong
address refused); read-only and full again (the permissions the API gives them follow). Nobody disables
themselves (the API's words shown), and a read-only operator has no key that changes anything. Snapshots
from a fixed state."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, Label

from console.app import ConsoleApp
from console.connection import Connection
from console.screens.confirm import ConfirmDialog
from console.screens.message import MessageDialog
from console.screens.operator_form import OperatorForm
from console.screens.operators import OperatorsScreen, operator_row
from console.screens.typed_confirm import TypedConfirmDialog
from console.widgets.row_table import RowTable
from tests.console.conftest import RunningAppliance, console_app, signed_in_store
from tests.console.pilot import confirm, screen_text, showing, until
from tests.console.test_snapshots import SIZE, fixed_app, settle
from tests.identity import STRONG_PASSWORD


def login(appliance: RunningAppliance, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=appliance.api_url, timeout=30) as http:
        return http.post("/api/v1/auth/login", json={"email": email, "password": password})


def operator(appliance: RunningAppliance, operator_id: str) -> httpx.Response:
    return appliance.api("GET", f"/api/v1/operators/{operator_id}")


async def one_time_password(pilot: Pilot[None], email: str) -> str:
    """The password the dialog shows once (it names `email`); the dialog closed."""
    app = pilot.app
    await until(pilot, lambda: showing(app, MessageDialog), "the one-time password")
    text = str(app.screen.query_one("#message-text", Label).content)
    assert email in text, text
    found = re.search(r"shown once\):\s+(\S+)", text)
    assert found, text
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, OperatorsScreen), "the dialog closed")
    return found.group(1)


def operators_screen(app: ConsoleApp) -> OperatorsScreen:
    screen = app.screen
    assert isinstance(screen, OperatorsScreen)
    return screen


async def listed(pilot: Pilot[None], *ids: str) -> tuple[OperatorsScreen, RowTable]:
    app = pilot.app
    assert isinstance(app, ConsoleApp)
    await until(pilot, lambda: showing(app, OperatorsScreen), "the operators view")
    screen = operators_screen(app)
    await until(
        pilot, lambda: bool(screen.table.rows) and all(i in screen.table.rows for i in ids), "the rows"
    )
    return screen, screen.table


def test_an_operator_created_disabled_enabled_reset_and_removed(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    email = f"made-{uuid.uuid4().hex[:6]}@console.test"
    app = console_app(appliance, tmp_path, first_view="operators")
    made: dict[str, str] = {}

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            _screen, table = await listed(pilot)
            await pilot.press("n")
            await until(pilot, lambda: showing(app, OperatorForm), "the new-operator form")
            app.screen.query_one("#email", Input).value = email
            app.screen.query_one("#display-name", Input).value = "Made Here"
            assert app.screen.query_one("#read-only", Checkbox).value is False
            await pilot.click("#create")
            first = await one_time_password(pilot, email)
            signed = login(appliance, email, first)
            assert signed.status_code == 200, signed.text
            assert signed.json()["must_change_password"] is True
            made["id"] = key = str(table.cursor_key)
            assert table.rows[key][:6] == (email, "Made Here", "full", "-", "active", "one-time")

            await confirm(pilot, "x", f"Disable operator {email}?")
            await until(pilot, lambda: table.rows[key][4] == "disabled", "the disabled status")
            assert login(appliance, email, first).status_code != 200

            await confirm(pilot, "e", f"Enable operator {email}?")
            await until(pilot, lambda: table.rows[key][4] == "active", "the active status")
            assert login(appliance, email, first).status_code == 200

            await confirm(pilot, "p", f"Reset the password of {email}?")
            second = await one_time_password(pilot, email)
            assert second != first
            assert login(appliance, email, first).status_code != 200
            assert login(appliance, email, second).status_code == 200

            await pilot.press("D")
            await until(pilot, lambda: showing(app, TypedConfirmDialog), "the typed confirmation")
            typed = app.screen.query_one("#typed", Input)
            typed.value = email.replace("@", "@x")
            await pilot.pause()
            assert app.screen.query_one("#yes", Button).disabled, "a wrong address cannot confirm"
            await pilot.press("enter")
            assert f"That is not {email!r}." in screen_text(app, ".dialog")
            assert operator(appliance, key).status_code == 200, "still there"
            typed.value = email
            await pilot.pause()
            await pilot.click("#yes")
            await until(pilot, lambda: key not in table.rows, "the row removed")
            assert any(f"Operator {email} removed." in n.message for n in app._notifications)

    asyncio.run(scenario())
    assert operator(appliance, made["id"]).status_code == 404
    listed_now = appliance.api("GET", "/api/v1/operators", params={"limit": 200}).json()["items"]
    assert email not in {o["email"] for o in listed_now}


def test_an_operator_made_read_only_and_full_again(appliance: RunningAppliance, tmp_path: Path) -> None:
    email = f"switched-{uuid.uuid4().hex[:6]}@console.test"
    appliance.create_operator(email)
    key = next(
        o["id"]
        for o in appliance.api("GET", "/api/v1/operators", params={"limit": 200}).json()["items"]
        if o["email"] == email
    )
    app = console_app(appliance, tmp_path, first_view="operators")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            _screen, table = await listed(pilot, key)
            assert table.move_to(key)
            await confirm(pilot, "t", f"Make operator {email} read-only?")
            await until(pilot, lambda: table.rows[key][2] == "read-only", "the read-only access")
            now = operator(appliance, key).json()
            assert now["read_only"] is True
            assert "operators:manage" not in now["permissions"]
            assert "operators:read" in now["permissions"]
            assert "tenants:manage" not in login(appliance, email, STRONG_PASSWORD).json()["permissions"]
            await confirm(pilot, "t", f"Give operator {email} full rights?")
            await until(pilot, lambda: table.rows[key][2] == "full", "the full access")
            assert "operators:manage" in operator(appliance, key).json()["permissions"]

    asyncio.run(scenario())
    assert "tenants:manage" in login(appliance, email, STRONG_PASSWORD).json()["permissions"]


def test_nobody_disables_themselves_and_the_api_says_why(appliance: RunningAppliance, tmp_path: Path) -> None:
    app = console_app(appliance, tmp_path, first_view="operators")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            _screen, table = await listed(pilot)
            me = next(k for k, cells in table.rows.items() if cells[0] == f"{appliance.operator_email} (you)")
            assert table.move_to(me)
            await confirm(pilot, "x", f"Disable operator {appliance.operator_email}?")
            await until(
                pilot,
                lambda: any(
                    "you cannot disable your own operator account" in n.message for n in app._notifications
                ),
                "the API's refusal",
            )
            assert table.rows[me][4] == "active"

    asyncio.run(scenario())
    assert login(appliance, appliance.operator_email, STRONG_PASSWORD).status_code == 200


def test_a_read_only_operator_sees_the_list_and_no_key_that_changes_it(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    email = f"looker-{uuid.uuid4().hex[:6]}@console.test"
    appliance.create_operator(email, "--read-only")
    store = signed_in_store(tmp_path / "credentials.json", appliance, email)
    app = ConsoleApp(Connection.open(appliance.target(), store), first_view="operators")

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            _screen, table = await listed(pilot)
            await until(pilot, lambda: app.read_only, "the read-only session")
            footer = screen_text(app, "Footer")
            for title in ("New", "Disable", "Enable", "Reset password", "Read-only", "Remove"):
                assert title not in footer, footer
            assert "Filter" in footer
            other = next(k for k, cells in table.rows.items() if cells[0] == appliance.operator_email)
            assert table.move_to(other)
            await pilot.press("n", "x", "e", "p", "t", "D")
            await pilot.pause(0.3)
            assert isinstance(app.screen, OperatorsScreen)
            assert not showing(app, ConfirmDialog)

    asyncio.run(scenario())
    listed_now = appliance.api("GET", "/api/v1/operators", params={"limit": 200}).json()["items"]
    me = next(o for o in listed_now if o["email"] == appliance.operator_email)
    assert (me["disabled"], me["read_only"]) == (False, False)


# --- snapshots, from a fixed state ----------------------------------------------------------------------

NOW = 1796364000.0  # 2026-12-04T06:00:00Z
OPERATORS: list[dict[str, Any]] = [
    {
        "id": f"00000000-0000-0000-0000-0000000000a{n}",
        "email": email,
        "display_name": name,
        "read_only": read_only,
        "permissions": ["operators:read", "tenants:read"]
        if read_only
        else ["operators:manage", "tenants:manage"],
        "mfa_enabled": mfa,
        "disabled": disabled,
        "must_change_password": one_time,
        "last_login_at": last,
        "created_at": "2026-11-01T09:00:00Z",
    }
    for n, (email, name, read_only, mfa, disabled, one_time, last) in enumerate(
        [
            ("ops@example.com", "Ops", False, True, False, False, "2026-12-04T05:58:00Z"),
            ("night-shift@example.com", "Night shift", True, False, False, False, "2026-12-03T22:10:00Z"),
            ("new-hire@example.com", "New hire", False, False, False, True, None),
            ("left@example.com", "Left in May", False, True, True, False, "2026-05-30T17:00:00Z"),
        ]
    )
]


def test_rows_say_access_status_and_who_you_are() -> None:
    rows = [operator_row(o, NOW, "ops@example.com")[1] for o in OPERATORS]
    assert rows[0] == ("ops@example.com (you)", "Ops", "full", "on", "active", "-", "2m00s ago")
    assert rows[1][2:] == ("read-only", "-", "active", "-", "7h50m ago")
    assert rows[2][5:] == ("one-time", "never")
    assert rows[3][4:] == ("disabled", "-", "187d ago")


async def operators_view(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.press("o")
    await until(pilot, lambda: showing(pilot.app, OperatorsScreen), "the operators view")
    screen = pilot.app.screen
    assert isinstance(screen, OperatorsScreen)
    screen.workers.cancel_all()
    screen.clock = lambda: NOW
    screen.operators = {o["id"]: o for o in OPERATORS}
    screen.draw()
    screen.table.move_to(OPERATORS[1]["id"])
    await pilot.pause(0.2)


def test_snapshot_operators(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=operators_view)


def test_snapshot_operators_read_only(snap_compare: Any, tmp_path: Path) -> None:
    assert snap_compare(fixed_app(tmp_path, read_only=True), terminal_size=SIZE, run_before=operators_view)


def test_snapshot_operator_form(snap_compare: Any, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await settle(pilot)
        pilot.app.push_screen(OperatorForm())
        await pilot.pause()

    assert snap_compare(fixed_app(tmp_path), terminal_size=SIZE, run_before=run_before)
