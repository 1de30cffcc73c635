"""The tenants view against a real appliance: the table, the filter, the detail pane and the operator's
actions, each confirmed by name."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Button, Input, Select

from console.screens.confirm import ConfirmDialog
from console.screens.message import MessageDialog
from console.screens.plan_dialog import PlanDialog
from console.screens.tenant_form import TenantForm
from console.screens.tenants import TenantsScreen, entry_name
from console.screens.typed_confirm import TypedConfirmDialog
from console.widgets.row_table import RowTable
from tests.console.conftest import RunningAppliance, console_app, run_appliance
from tests.console.pilot import confirm, screen_text, showing, tenant_row, until


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_tenants_table_filter_and_suspend(appliance: RunningAppliance, tmp_path: Path) -> None:
    first, second = slug("alpha"), slug("beta")
    created = appliance.create_tenant(first, plan="team")
    appliance.create_tenant(second)
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            _screen, table = await tenant_row(pilot, created["id"])
            await pilot.press("slash", *first)
            assert [table.rows[k][0] for k in table.shown] == [first]
            await pilot.press("enter")
            await confirm(pilot, "s", f"Suspend tenant {first}?")
            await until(pilot, lambda: table.rows[created["id"]][3] == "suspended", "the suspended status")
        assert appliance.api("GET", f"/api/v1/tenants/{created['id']}").json()["status"] == "suspended"

    asyncio.run(scenario())


def test_a_confirmation_shows_its_whole_question_and_says_what_enter_does(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    """At 80x24 a long tenant name is wrapped, not cut; Enter presses the highlighted button, which is
    Cancel for a suspension (said under the buttons) and the action for a resumption."""
    name = (
        "The [b]ig Northern Amalgamated Widget, Sprocket and Flange Manufacturing Cooperative of Greater "
        "Kirkcaldy"
    )
    response = appliance.api("POST", "/api/v1/tenants", json={"slug": slug("long"), "name": name})
    assert response.status_code == 201, response.text
    created = response.json()
    app = console_app(appliance, tmp_path, first_view="tenants")

    def status() -> str:
        return str(appliance.api("GET", f"/api/v1/tenants/{created['id']}").json()["status"])

    async def ask(pilot: Pilot[None], key: str) -> str:
        await pilot.press(key)
        await until(pilot, lambda: showing(app, ConfirmDialog), "the confirmation")
        await pilot.pause()
        return screen_text(app, ".dialog")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            _screen, table = await tenant_row(pilot, created["id"])
            assert table.move_to(created["id"])
            shown = await ask(pilot, "s")
            assert f"Suspend tenant {created['slug']}?" in shown
            assert f"{name}: its users, tokens and API keys are refused until it is resumed." in shown
            assert "Enter: Cancel · y: Suspend" in shown
            await pilot.press("enter")
            await until(pilot, lambda: not showing(app, ConfirmDialog), "the dialog closed")
            assert status() == "active"

            await ask(pilot, "s")
            await pilot.press("tab")
            assert "Enter: Suspend" in screen_text(app, ".dialog")
            await pilot.press("enter")
            await until(pilot, lambda: table.rows[created["id"]][3] == "suspended", "the suspension")
            assert status() == "suspended"

            assert "Enter: Resume" in await ask(pilot, "u")
            await pilot.press("enter")
            await until(pilot, lambda: table.rows[created["id"]][3] == "active", "the resumption")
            assert status() == "active"

    asyncio.run(scenario())


def test_a_tenant_purged_while_shown_is_said_and_dropped(appliance: RunningAppliance, tmp_path: Path) -> None:
    name = slug("gone")
    created = appliance.create_tenant(name)
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            _screen, table = await tenant_row(pilot, created["id"])
            assert table.move_to(created["id"])
            purge(appliance, created["id"])  # deleted and purged for good by someone else meanwhile
            await confirm(pilot, "s", f"Suspend tenant {name}?")
            await until(pilot, lambda: created["id"] not in table.rows, "the row dropped")
            assert any(f"Tenant {name} no longer exists" in n.message for n in app._notifications)

    asyncio.run(scenario())


def purge(appliance: RunningAppliance, tenant_id: str) -> None:
    """Delete the tenant through the API, move its purge date to the past, and purge as an admin would."""
    assert appliance.api("DELETE", f"/api/v1/tenants/{tenant_id}").status_code == 204
    with sqlite3.connect(appliance.data / "appliance.db") as db:
        db.execute(
            "UPDATE tenants SET purge_after = '2000-01-01 00:00:00.000000' WHERE id = ?",
            (uuid.UUID(tenant_id).hex,),
        )
    done = run_appliance("tenant", "purge", "--yes", env=appliance.env)
    assert done.returncode == 0, done.stderr
    assert appliance.api("GET", f"/api/v1/tenants/{tenant_id}").status_code == 404


def test_create_change_plan_resume_and_delete_through_the_view(
    appliance: RunningAppliance, tmp_path: Path
) -> None:
    name = slug("made")
    app = console_app(appliance, tmp_path, first_view="tenants")

    def row_of(table: RowTable) -> tuple[str, ...] | None:
        return next((cells for cells in table.rows.values() if cells[0] == name), None)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, TenantsScreen)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: screen.loaded_at is not None, "the first load")
            await pilot.press("n")
            await until(pilot, lambda: showing(app, TenantForm), "the new-tenant form")
            app.screen.query_one("#slug", Input).value = name
            app.screen.query_one("#name", Input).value = "Made Here"
            app.screen.query_one("#owner", Input).value = f"owner@{name}.test"
            await pilot.click("#create")
            await until(pilot, lambda: showing(app, MessageDialog), "the owner's one-time password")
            assert f"owner@{name}.test" in str(app.screen.query_one("#message-text").render())
            await pilot.press("escape")
            await until(pilot, lambda: row_of(table) is not None, "the new row")
            assert table.rows[str(table.cursor_key)][0] == name, "the cursor is on the new tenant"

            await pilot.press("p")
            await until(pilot, lambda: showing(app, PlanDialog), "the plan dialog")
            app.screen.query_one(Select).value = "business"
            await pilot.click("#change")
            await until(pilot, lambda: (row_of(table) or ("",) * 3)[2] == "business", "the new plan")

            await pilot.press("D")
            await until(pilot, lambda: showing(app, TypedConfirmDialog), "the typed confirmation")
            delete_button = app.screen.query_one("#yes", Button)
            app.screen.query_one("#typed", Input).value = name[:-1]
            await pilot.pause()
            assert delete_button.disabled, "a wrong slug cannot confirm"
            app.screen.query_one("#typed", Input).value = name
            await pilot.pause()
            await pilot.click("#yes")
            await until(pilot, lambda: (row_of(table) or ("",) * 4)[3] == "deleted", "the deleted status")

            await confirm(pilot, "u", f"Resume tenant {name}?")
            await until(pilot, lambda: (row_of(table) or ("",) * 4)[3] == "active", "the active status")

    asyncio.run(scenario())
    listed = appliance.api("GET", "/api/v1/tenants", params={"q": name}).json()["items"]
    assert [(t["slug"], t["plan"], t["status"]) for t in listed] == [(name, "business", "active")]


def test_a_refused_action_shows_the_api_message(appliance: RunningAppliance, tmp_path: Path) -> None:
    taken = appliance.create_tenant(slug("taken"))["slug"]
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n")
            await until(pilot, lambda: showing(app, TenantForm), "the new-tenant form")
            app.screen.query_one("#slug", Input).value = taken
            app.screen.query_one("#name", Input).value = "Again"
            await pilot.click("#create")
            await until(
                pilot,
                lambda: any(taken in n.message and "already exists" in n.message for n in app._notifications),
                "the API's refusal, naming the slug",
            )
            assert isinstance(app.screen, TenantsScreen)

    asyncio.run(scenario())


def test_the_detail_pane_says_who_is_only_invited_and_which_key_is_revoked() -> None:
    member = {"id": "m1", "status": "active", "email": "ann@acme.test", "role": "owner"}
    invited = {"id": "i1", "status": "invited", "email": "bob@acme.test", "user_id": None}
    expired = {"id": "i2", "status": "expired", "email": "cy@acme.test", "user_id": None}
    assert [entry_name(m, "email") for m in (member, invited, expired)] == [
        "ann@acme.test",
        "bob@acme.test (invited)",
        "cy@acme.test (expired)",
    ]
    assert (
        entry_name({"id": "k1", "name": "ci", "revoked_at": "2026-12-01T00:00:00Z"}, "name") == "ci (revoked)"
    )
    assert entry_name({"id": "k2", "name": "deploy", "revoked_at": None}, "name") == "deploy"
    assert entry_name({"id": "o1", "name": ""}, "name") == "o1"
